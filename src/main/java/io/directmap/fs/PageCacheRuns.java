package io.directmap.fs;

import io.directmap.sys.Cachestat;
import io.directmap.sys.FileHandle;
import io.directmap.sys.Process;
import io.directmap.sys.SysException;
import java.util.ArrayList;
import java.util.List;

/**
 * The page-cache state of a range as runs of uniform pages, found with cachestat alone: a range
 * that is all cold, or all cached and all clean (or all dirty), is one run; any other is halved.
 * A cold file costs one call; each boundary costs about log2(pages) calls.
 */
final class PageCacheRuns {
    record Run(long start, long end, boolean cached, boolean dirty) {}

    private PageCacheRuns() {}

    static List<Run> of(FileHandle file, long start, long end) throws SysException {
        long page = Process.PAGE_SIZE;
        long s = start / page * page;
        long e = (end + page - 1) / page * page;
        List<Run> out = new ArrayList<>();
        if (e > s) split(file, s, e, page, out);
        return out;
    }

    private static void split(FileHandle file, long s, long e, long page, List<Run> out) throws SysException {
        long pages = (e - s) / page;
        Cachestat.Stat st = Cachestat.query(file, s, e - s);
        long dirty = st.dirty() + st.writeback();
        if (st.cached() == 0) {
            add(out, new Run(s, e, false, false));
        } else if (pages <= 1) {
            // One page cannot be halved (a half would be empty, and cachestat reads length 0 as "to
            // the end of the file"): a page both dirty and under writeback counts twice, so dirty
            // can exceed pages here.
            add(out, new Run(s, e, true, dirty > 0));
        } else if (st.cached() == pages && (dirty == 0 || dirty == pages)) {
            add(out, new Run(s, e, true, dirty > 0));
        } else {
            long mid = s + (pages / 2) * page;
            split(file, s, mid, page, out);
            split(file, mid, e, page, out);
        }
    }

    private static void add(List<Run> out, Run r) {
        if (!out.isEmpty()) {
            Run last = out.getLast();
            if (last.end() == r.start() && last.cached() == r.cached() && last.dirty() == r.dirty()) {
                out.set(out.size() - 1, new Run(last.start(), r.end(), r.cached(), r.dirty()));
                return;
            }
        }
        out.add(r);
    }
}
