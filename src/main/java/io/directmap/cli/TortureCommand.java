package io.directmap.cli;

import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.tools.Workloads;
import io.directmap.tools.torture.Torture;
import io.directmap.tools.torture.TrustedDirectory;
import java.io.PrintWriter;
import java.nio.file.Files;
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

@Command(name = "torture", description = {
        "Prove coherence on the file system holding DIR: devices read a file there over and over while other",
        "processes (dd, xfs_io, fallocate, the defragmenter) write, punch, truncate and relocate it; every block",
        "read is checked against the versions the file held. Then measure what a reading device keeps while",
        "another process writes 1% of a file per second. The files are deleted afterwards.",
        "DIR and every directory above it must be owned by root or you and not writable by group or others",
        "(an ancestor with the sticky bit, like /tmp, may be): the tools reach the files there by path."})
final class TortureCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin Common common;

    @Parameters(paramLabel = "DIR", description = "A directory on the file system to test (a scratch one of your own: files are written there).")
    Path dir;

    @Option(names = "--reads", paramLabel = "N", defaultValue = "5000", description = "Reads per device (default: ${DEFAULT-VALUE}).")
    long reads;

    @Option(names = "--devices", paramLabel = "NAMES", split = ",", defaultValue = "gpu0,nic0",
            description = "The reading devices (default: ${DEFAULT-VALUE}).")
    List<String> devices;

    @Option(names = "--throughput-size", paramLabel = "SIZE", defaultValue = "256M",
            description = "Size of the file for the throughput part, 0 to skip it (default: ${DEFAULT-VALUE}).")
    Size throughputSize;

    @Option(names = "--seconds", defaultValue = "3", description = "Seconds per throughput phase (default: ${DEFAULT-VALUE}).")
    double seconds;

    @Option(names = "--seed", paramLabel = "N", description = "Seed of the torture's choices and reads (default: a new one, printed so that a run can be repeated).")
    Long seed;

    @Override
    public Integer call() throws Exception {
        long seed = this.seed != null ? this.seed : io.directmap.lang.Xorshift.newSeed();
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        Path dir = TrustedDirectory.require(this.dir);
        String fs = io.directmap.sys.MountInfo.of(io.directmap.sys.Statx.of(dir).mountId())
                .map(io.directmap.sys.MountInfo.Mount::fsType).orElse("?");
        long tsize = throughputSize.bytes();
        Path file = Files.createTempFile(dir, "dmap-torture", ".bin");
        Path big = tsize > 0 ? Files.createTempFile(dir, "dmap-throughput", ".bin") : null;
        try (FsStack mm = common.addressSpace()) {
            List<SoftwareDevice> devs = new ArrayList<>();
            try {
                for (String d : devices) devs.add(SoftwareDevice.create(d, mm.topology()));
                err.println("torture seed " + seed + " (--seed " + seed + " repeats its choices)");
                Torture.Summary s = new Torture(file, 4096, fs).run(mm, devs, reads, seed, line -> err.println("  " + line));
                Torture.Throughput t = null;
                if (!common.json) {
                    out.print(s.render());
                    if (!s.problems().isEmpty()) out.println("problems: " + String.join("; ", s.problems()));
                    out.flush();
                }
                if (big != null) {
                    Workloads.write(big, 0, tsize, 7);
                    t = Torture.throughput(mm, devs.getFirst(), big, seconds, 7);
                    if (!common.json) out.print(t.render());
                }
                if (common.json) {
                    Map<String, Object> m = new LinkedHashMap<>(s.json());
                    m.put("passed", s.passed());
                    m.put("throughput", t == null ? null : t.json());
                    out.print(Json.write(m));
                }
                out.flush();
                return s.passed() ? Dmap.OK : Dmap.FAILED;
            } finally {
                for (SoftwareDevice d : devs) d.close();
            }
        } finally {
            Files.deleteIfExists(file);
            if (big != null) Files.deleteIfExists(big);
        }
    }
}
