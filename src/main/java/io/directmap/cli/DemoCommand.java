package io.directmap.cli;

import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.mm.MapMode;
import io.directmap.sys.Process;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;

@Command(name = "demo", description = {
        "Build a small real ext4 on a loop device (as root), write files with telling layouts,",
        "map each into a software GPU, show the plan and the result, and clean up everything.",
        "Without root, show the fallback path on a file of its own."})
final class DemoCommand implements Callable<Integer> {
    private static final long MiB = 1 << 20;

    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin Common common;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        var why = ScratchFilesystem.unavailableBecause(ScratchFilesystem.Type.EXT4);
        if (why.isPresent()) return withoutRoot(out, why.get());
        List<MapReport> reports = new ArrayList<>();
        try (ScratchFilesystem fs = ScratchFilesystem.create(ScratchFilesystem.Type.EXT4, 256 * MiB, false, List.of());
             FsStack mm = common.addressSpace(); SoftwareDevice gpu = common.device(mm)) {
            if (!common.json) {
                out.printf("Made %s (a 256 MiB sparse image with no name, loop direct I/O on); %s imports.%n", fs, gpu);
                out.println(fs.diesWithProcess()
                        ? "The mount is private to this process: even a kill -9 leaves no mount, loop device or image behind."
                        : "The mount is visible to the whole system: if this process is killed, unmount " + fs.mountPoint()
                                + " by hand (./dmap run as root, without DMAP_SHARED_MOUNTS set, gives it a private one).");
                out.println();
            }
            Path dir = fs.mountPoint();
            Path cold = dir.resolve("cold.bin");
            Workloads.write(cold, 0, 48 * MiB, 1);
            Workloads.syncAndEvict(cold);
            reports.add(show(out, mm, gpu, cold, "48 MiB written, synced, evicted from the page cache: goes direct"));

            Path half = dir.resolve("half-cached.bin");
            Workloads.write(half, 0, 32 * MiB, 2);
            Workloads.syncAndEvict(half);
            for (long at = 0; at < 32 * MiB; at += 8 * MiB) Workloads.cache(half, at, 4 * MiB);
            reports.add(show(out, mm, gpu, half, "32 MiB, every other 4 MiB read back into the page cache: mixed"));

            Path sparse = dir.resolve("sparse.bin");
            Workloads.write(sparse, 0, 4 * MiB, 3);
            Workloads.write(sparse, 12 * MiB, 4 * MiB, 4);
            Workloads.syncAndEvict(sparse);
            reports.add(show(out, mm, gpu, sparse, "16 MiB with an 8 MiB hole in the middle: the hole reads zeros from the page cache"));

            Path prealloc = dir.resolve("preallocated.bin");
            Workloads.write(prealloc, 0, 4 * MiB, 5);
            Workloads.preallocate(prealloc, 4 * MiB, 8 * MiB);
            Workloads.syncAndEvict(prealloc);
            reports.add(show(out, mm, gpu, prealloc, "4 MiB of data then 8 MiB fallocated (unwritten): only the data goes direct"));

            Path fresh = dir.resolve("fresh.bin");
            Workloads.write(fresh, 0, 8 * MiB, 6);
            reports.add(show(out, mm, gpu, fresh, "8 MiB just written, not yet synced (delayed allocation): falls back"));
        }
        if (common.json) {
            out.print(Json.write(reports.stream().map(MapReport::toJson).toList()));
        } else {
            out.println("Cleaned up: unmounted; the loop device detached itself and the image was freed.");
        }
        out.flush();
        return reports.stream().allMatch(MapReport::checksumOk) ? Dmap.OK : Dmap.FAILED;
    }

    private MapReport show(PrintWriter out, FsStack mm, SoftwareDevice gpu, Path file, String what) throws Exception {
        MapReport r = MapReport.run(mm, gpu, file, null, null, Set.of(), MapMode.MIXED, true, d -> { });
        if (!common.json) {
            out.println("== " + file.getFileName() + ": " + what);
            r.print(out);
            out.println();
        }
        return r;
    }

    private int withoutRoot(PrintWriter out, String why) throws Exception {
        Path dir = Files.createTempDirectory("dmap-demo-");
        try (FsStack mm = common.addressSpace(); SoftwareDevice gpu = common.device(mm)) {
            if (!common.json) {
                out.println("dmap demo cannot build a loop-mounted file system: " + why + ".");
                out.println("Showing the fallback path instead, on a file of its own in " + dir + ":");
                out.println();
            }
            Path file = dir.resolve("own.bin");
            Workloads.write(file, 0, 16 * (1 << 20), 7);
            Workloads.syncAndEvict(file);
            MapReport r = show(out, mm, gpu, file, "16 MiB, cold; its block device cannot be opened by uid "
                    + Process.effectiveUid() + ", so every byte comes through the page cache");
            if (common.json) out.print(Json.write(r.toJson()));
            out.flush();
            return r.checksumOk() ? Dmap.OK : Dmap.FAILED;
        } finally {
            try (Stream<Path> w = Files.walk(dir)) {
                for (Path p : w.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
            }
        }
    }
}
