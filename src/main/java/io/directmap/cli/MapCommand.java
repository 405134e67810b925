package io.directmap.cli;

import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "map", description = {
        "mmap FILE, have a device access it through device_map, move every byte into the device's memory,",
        "and show range by range what went direct and what fell back to the page cache, and why."})
final class MapCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin Common common;

    @Parameters(paramLabel = "FILE", description = "The file to map.")
    Path file;

    @Option(names = "--range", paramLabel = "START:END", description = "Bytes to map (default: the whole file); sizes like 4M.")
    Range range;

    @Option(names = "--all-or-nothing", description = "The proposal's contract: direct for the whole range, or fall back entirely.")
    boolean allOrNothing;

    @Option(names = "--write", description = "Ask for a writable mapping (DEVICE_MAP_FLAG_WRITE).")
    boolean write;

    @Option(names = "--pin", description = "Ask for a pinned mapping (DEVICE_MAP_FLAG_PIN).")
    boolean pin;

    @Option(names = "--atomic", description = "Ask for atomic operations (DEVICE_MAP_FLAG_SUPPORT_ATOMIC_OP).")
    boolean atomic;

    @Option(names = "--no-verify", description = "Do not read the file again to compare checksums.")
    boolean noVerify;

    @Override
    public Integer call() throws Exception {
        Range r = range == null ? Range.WHOLE : range;
        var flags = EnumSet.noneOf(MapFlag.class);
        if (write) flags.add(MapFlag.WRITE);
        if (pin) flags.add(MapFlag.PIN);
        if (atomic) flags.add(MapFlag.SUPPORT_ATOMIC_OP);
        var out = spec.commandLine().getOut();
        try (FsStack mm = common.addressSpace(); SoftwareDevice dev = common.device(mm)) {
            MapReport report;
            long total = java.nio.file.Files.isRegularFile(file) ? java.nio.file.Files.size(file) : 1;
            try (Progress p = new Progress(spec.commandLine().getErr(), Math.max(1, total), !common.json)) {
                report = MapReport.run(mm, dev, file, r.start(), r.end(), flags,
                        allOrNothing ? MapMode.ALL_OR_NOTHING : MapMode.MIXED, !noVerify, p);
            }
            if (common.json) out.print(Json.write(report.toJson())); else report.print(out);
            out.flush();
            return report.checksumOk() ? Dmap.OK : Dmap.FAILED;
        }
    }
}
