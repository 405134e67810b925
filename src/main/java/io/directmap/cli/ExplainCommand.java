package io.directmap.cli;

import io.directmap.device.SoftwareDevice;
import io.directmap.fs.Extent;
import io.directmap.fs.FsStack;
import io.directmap.fs.OpenFile;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Vma;
import io.directmap.sys.Cachestat;
import io.directmap.sys.Process;
import io.directmap.sys.SysException;
import io.directmap.sys.Units;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "explain", description = {
        "Show the plan for FILE without moving data: its extents, its page-cache residency,",
        "and the decision of the file system and the block device for each range."})
final class ExplainCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin Common common;

    @Parameters(paramLabel = "FILE", description = "The file to explain.")
    Path file;

    @Option(names = "--range", paramLabel = "START:END", description = "Bytes to explain (default: the whole file).")
    Range range;

    @Override
    public Integer call() throws Exception {
        Range r = range == null ? Range.WHOLE : range;
        PrintWriter out = spec.commandLine().getOut();
        try (FsStack mm = common.addressSpace(); SoftwareDevice dev = common.device(mm); Vma vma = mm.mmap(file)) {
            long page = Process.PAGE_SIZE;
            long start = r.start() == null ? 0 : r.start(), end = r.end() == null ? vma.length() : r.end();
            if (start < 0 || end <= start || end > vma.length()) {
                throw new io.directmap.mm.InvalidRequestException(file + ": range " + start + ":" + end
                        + " is not within the file [0, " + vma.length() + "); give START < END <= " + vma.length());
            }
            long mapStart = start / page * page, mapEnd = (end + page - 1) / page * page;
            List<Extent> extents = mm.fs().extents(OpenFile.of(vma), mapStart, mapEnd);
            String cache;
            Cachestat.Stat st = null;
            try {
                st = Cachestat.query(OpenFile.of(vma).handle(), mapStart, mapEnd - mapStart);
                cache = st.cached() + " of " + (mapEnd - mapStart) / page + " pages cached, " + st.dirty() + " dirty, "
                        + st.writeback() + " under writeback";
            } catch (SysException e) {
                cache = "unknown (" + e.getMessage() + ")";
            }
            DeviceMapping m = vma.ops().deviceMap(vma, new MapRequest(dev.endpoint(), mapStart, mapEnd));
            try {
                if (common.json) {
                    Map<String, Object> j = new LinkedHashMap<>();
                    j.put("file", vma.file().path().toString());
                    j.put("fs", OpenFile.of(vma).fsType());
                    j.put("size", vma.length());
                    j.put("device", dev.name());
                    j.put("start", mapStart);
                    j.put("end", mapEnd);
                    List<Object> xs = new ArrayList<>();
                    for (Extent x : extents) {
                        Map<String, Object> e = new LinkedHashMap<>();
                        e.put("start", x.start());
                        e.put("end", x.end());
                        e.put("kind", x.kind().name().toLowerCase());
                        e.put("physical", x.kind() == Extent.Kind.MAPPED ? x.physical() : null);
                        e.put("shared", x.shared());
                        xs.add(e);
                    }
                    j.put("extents", xs);
                    j.put("cached_pages", st == null ? null : st.cached());
                    j.put("dirty_pages", st == null ? null : st.dirty());
                    j.put("direct_bytes", m.directBytes());
                    j.put("fallback_bytes", m.fallbackBytes());
                    j.put("segments", MapReport.segmentsJson(m.segments()));
                    out.print(Json.write(j));
                } else {
                    out.printf("file        %s (%s on %s, %s)%n", vma.file().path(), OpenFile.of(vma).fsType(),
                            OpenFile.of(vma).mountPoint(), Units.bytes(vma.length()));
                    out.printf("page cache  %s%n", cache);
                    out.printf("importer    %s%n%n", dev);
                    out.println("extents (FIEMAP, as the " + OpenFile.of(vma).fsType() + " adapter reads them)");
                    Table t = new Table("START", "END", "KIND", "PHYSICAL", "SHARED");
                    for (Extent x : extents) {
                        t.row(x.start(), x.end(), x.kind().name().toLowerCase(),
                                x.kind() == Extent.Kind.MAPPED ? x.physical() : "-", x.shared() ? "yes" : "");
                    }
                    t.print(out);
                    out.println();
                    out.println("decisions (device_map for " + dev.name() + ")");
                    MapReport.segmentTable(m.segments()).print(out);
                    out.printf("%n%s direct, %s through the page cache%n", Units.bytes(m.directBytes()), Units.bytes(m.fallbackBytes()));
                }
            } finally {
                vma.ops().deviceUnmap(vma, dev.endpoint(), m);
            }
            out.flush();
            return Dmap.OK;
        }
    }
}
