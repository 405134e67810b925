package io.directmap.cli;

import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.dmabuf.Attachment;
import io.directmap.fs.FsStack;
import io.directmap.fs.OpenFile;
import io.directmap.fs.PinOutcome;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Segment;
import io.directmap.sys.Process;
import io.directmap.sys.Units;
import io.directmap.tools.Workloads;
import java.io.PrintWriter;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "pin", description = {
        "Pin a range of FILE for a device (device_map with DEVICE_MAP_FLAG_PIN): the whole range direct, in a dma_buf the",
        "device attaches to, its blocks held in place for as long as this process holds the pin: every other open for writing",
        "and every change of the range (write, truncate, hole punch, fallocate, e4defrag, xfs_fsr) gets ETXTBSY. Refused, with",
        "the reason, on btrfs, without fanotify pre-content events (root, Linux 6.14+), when the file is open for writing",
        "elsewhere, or when part of the range is not direct. The pin ends when --for runs out or the process ends (kill -9",
        "included: the kernel drops its fanotify group). dmap pins lists it meanwhile."})
final class PinCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin Common common;

    @Parameters(paramLabel = "FILE", description = "The file to pin.")
    Path file;

    @Option(names = "--range", paramLabel = "START:END", description = "Bytes to pin (default: the whole file), widened to whole pages; sizes like 4M.")
    Range range;

    @Option(names = "--for", paramLabel = "SECONDS", description = "Hold the pin this long, then release it (default: until the process is ended).")
    Double seconds;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        if (seconds != null && !(seconds >= 0)) throw new InvalidRequestException("--for " + seconds + ": give a number of seconds >= 0");
        try (FsStack mm = common.addressSpace(); SoftwareDevice dev = common.device(mm); OpenFile f = OpenFile.open(file)) {
            long size = f.size(), page = Process.PAGE_SIZE;
            long start = range == null || range.start() == null ? 0 : range.start();
            long end = range == null || range.end() == null ? size : range.end();
            if (start < 0 || end <= start || end > size) {
                throw new InvalidRequestException(file + ": range " + start + ":" + end + " is empty, reversed or outside the file; give START < END, both in [0, "
                        + size + "]");
            }
            long s = start / page * page, e = Math.ceilDiv(end, page) * page;
            MapRequest request = new MapRequest(dev.endpoint(), s, e, EnumSet.of(MapFlag.PIN), MapMode.ALL_OR_NOTHING);
            PinOutcome outcome = mm.fs().pin(f, request, mm.changeWatch());
            return switch (outcome) {
                case PinOutcome.Refused r -> refused(out, err, r, dev, s, e);
                case PinOutcome.Pinned p -> hold(mm, dev, p, s, e, Math.min(end, size), out, err);
            };
        }
    }

    private int refused(PrintWriter out, PrintWriter err, PinOutcome.Refused r, SoftwareDevice dev, long s, long e) {
        if (common.json) {
            Map<String, Object> m = base(dev, s, e);
            m.put("pinned", false);
            m.put("refused_by", r.refusal().reason().refuser().label());
            m.put("reason", r.refusal().reason().code());
            m.put("summary", r.refusal().reason().summary());
            m.put("detail", r.refusal().detail());
            out.print(Json.write(m));
            out.flush();
        }
        err.println("dmap: pin of " + file + " " + Units.range(s, e) + " for " + dev.name() + " refused: " + r.refusal());
        return Dmap.FAILED;
    }

    private int hold(FsStack mm, SoftwareDevice dev, PinOutcome.Pinned p, long s, long e, long dataEnd, PrintWriter out, PrintWriter err)
            throws Exception {
        // The device attaches (pinned) and the holder's own reference goes: the attachment holds the pin now.
        try (Attachment a = p.buf().attach(dev.endpoint()); DeviceMemory.Buffer mem = dev.allocate(file + ": the pinned range", e - s)) {
            p.buf().release();
            List<Segment> segments = a.map();
            dev.readDirect(segments, s, mem.segment());
            boolean same = sameAsFile(mem.segment(), s, dataEnd);
            try (var publisher = PinFiles.start(mm.fs(), "dmap pin " + file, err)) {
                if (common.json) {
                    Map<String, Object> m = base(dev, s, e);
                    m.put("pinned", true);
                    m.put("pid", ProcessHandle.current().pid());
                    m.put("checksum_ok", same);
                    List<Object> segs = new ArrayList<>();
                    for (Segment seg : segments) {
                        Segment.Direct d = (Segment.Direct) seg;
                        Map<String, Object> j = new LinkedHashMap<>();
                        j.put("start", d.start());
                        j.put("end", d.end());
                        j.put("peer", d.peer().name());
                        j.put("device_offset", d.deviceOffset());
                        j.put("bus_address", d.busAddress());
                        j.put("route", d.route());
                        segs.add(j);
                    }
                    m.put("segments", segs);
                    m.put("for_seconds", seconds);
                    out.println(Json.write(m));
                } else {
                    out.printf("pinned %s %s for %s (pid %d): %d direct segment%s, %s read by the device, %s%n", file, Units.range(s, e), dev.name(),
                            ProcessHandle.current().pid(), segments.size(), segments.size() == 1 ? "" : "s", Units.bytes(e - s),
                            same ? "the same bytes as the file" : "NOT the bytes the file holds");
                    for (Segment seg : segments) {
                        Segment.Direct d = (Segment.Direct) seg;
                        out.printf("  %-24s  %s at %s, bus 0x%x%n", Units.range(d.start(), d.end()), d.route(), Units.bytes(d.deviceOffset()), d.busAddress());
                    }
                    out.printf("opens of the file for writing and changes of the range get ETXTBSY %s; dmap pins lists it%n",
                            seconds == null ? "until this process ends" : "for " + seconds + " s");
                }
                out.flush();
                awaitEnd();
                publisher.refresh();
            }
            if (!common.json) out.printf("released %s %s%n", file, Units.range(s, e));
            out.flush();
            return same ? Dmap.OK : Dmap.FAILED;
        }
    }

    /** Until --for runs out, or for good (until the process is ended). */
    private void awaitEnd() throws InterruptedException {
        if (seconds == null) {
            while (true) Thread.sleep(Long.MAX_VALUE);
        }
        long deadline = System.nanoTime() + (long) (seconds * 1e9);
        for (long left; (left = deadline - System.nanoTime()) > 0; ) Thread.sleep(Math.max(1, left / 1_000_000));
    }

    /** Whether device memory holds the file's bytes of [s, dataEnd), as the file system returns them. */
    private boolean sameAsFile(MemorySegment device, long s, long dataEnd) throws java.io.IOException {
        byte[] expected = Workloads.read(file, s, Math.toIntExact(dataEnd - s));
        return MemorySegment.mismatch(device, 0, expected.length, MemorySegment.ofArray(expected), 0, expected.length) < 0;
    }

    private Map<String, Object> base(SoftwareDevice dev, long s, long e) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("file", file.toAbsolutePath().toString());
        m.put("start", s);
        m.put("end", e);
        m.put("device", dev.name());
        return m;
    }
}
