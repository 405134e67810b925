package io.directmap.fs;

import io.directmap.mm.Peer;
import io.directmap.mm.Segment;
import io.directmap.sys.FileHandle;
import io.directmap.sys.FileTimes;
import io.directmap.sys.PageCacheAdvice;
import io.directmap.sys.SysException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the file system does around a device's writes (the WRITE half of device_map): the fallback
 * writes through the page cache, and, once the device has written, the file brought in line with
 * its blocks before the mapping can be taken back. The kernel does the same for an O_DIRECT write
 * of a file (invalidate_inode_pages2_range after the write, file_update_time before it); a device
 * writing the block device directly bypasses both, so they are done here.
 */
final class DeviceWrites {
    /** Bytes written again through the page cache because a page of a direct range was cached after all. */
    private final AtomicLong restored = new AtomicLong();

    /** pwrite of src at offset through the descriptor that holds the write lease. */
    void store(OpenFile file, long offset, MemorySegment src) throws IOException {
        if (!file.writable()) {
            throw new IOException(file.path() + " was mapped for reading: its fallback writes need it mapped for writing"
                    + " (FsStack.mmapForWrite); nothing of " + io.directmap.sys.Units.range(offset, offset + src.byteSize())
                    + " was written");
        }
        file.handle().pwriteFully(src, offset);
    }

    /**
     * After a device wrote [start, end) through m: no page-cache page of a direct range keeps the old
     * bytes (clean pages are dropped, posix_fadvise DONTNEED; one that stays, because a fault of this
     * process cached it again meanwhile, gets the new bytes written into it from src through the file
     * system, so writeback can only write them again); mtime and ctime move (futimens); and, when
     * durable, the block devices written are flushed and the file's own writes synced (fdatasync).
     * The caller (the importer) still holds the range, so no one else opens the file before this
     * returns: the write lease makes every other open wait until the mapping is let go.
     */
    void written(FileMapping m, long start, long end, MemorySegment src, boolean durable) throws IOException {
        OpenFile file = m.file();
        FileHandle h = file.handle();
        List<Peer> written = new ArrayList<>();
        boolean throughCache = false;
        for (Segment s : m.segments()) {
            long a = Math.max(start, s.start()), b = Math.min(end, s.end());
            if (a >= b) continue;
            if (!(s instanceof Segment.Direct d)) {
                throughCache = true;
                continue;
            }
            if (!written.contains(d.peer())) written.add(d.peer());
            PageCacheAdvice.dropCache(h, a, b - a);
            for (PageCacheRuns.Run run : PageCacheRuns.of(h, a, b)) {
                if (!run.cached()) continue;
                long x = Math.max(a, run.start()), y = Math.min(b, run.end());
                h.pwriteFully(src.asSlice(x - start, y - x), x);
                restored.addAndGet(y - x);
                throughCache = true;
            }
        }
        if (!written.isEmpty()) FileTimes.touch(h);
        if (!durable) return;
        for (Peer p : written) {
            if (!p.beginDirectRead()) {
                throw new IOException(p.node() + " was closed (it is going away) before its writes to " + file.path()
                        + " " + io.directmap.sys.Units.range(start, end) + " were flushed; write the range again");
            }
            try {
                p.flushWrites();
            } finally {
                p.endDirectRead();
            }
        }
        if (throughCache) FileHandle.fdatasync(h.fd(), file.path());
    }

    /** How many bytes were written again through the page cache after a direct write (a page cached meanwhile). */
    long restored() { return restored.get(); }
}
