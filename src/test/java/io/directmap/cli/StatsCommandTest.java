package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.ToNumberPolicy;
import io.directmap.Stats;
import io.directmap.device.ExportedMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.AddressSpace;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Vma;
import io.directmap.pci.PciTree;
import io.directmap.pci.Topology;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * dmap stats as a user runs it: against a dmap watch that holds mappings on a loop-mounted ext4
 * whose 1 MiB aperture is full (in this JVM: the watch publishes under this process's pid), and
 * against stale files of processes that are gone or whose pid is another program's now.
 */
class StatsCommandTest {
    static final long MiB = 1 << 20;
    static final Gson GSON = new GsonBuilder().setObjectToNumberStrategy(ToNumberPolicy.LONG_OR_DOUBLE).create();

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @TempDir Path tmp;
    Path run;

    @BeforeEach
    void statsDir() {
        run = tmp.resolve("run-directmap");
        System.setProperty(StatsFiles.DIR_PROPERTY, run.toString());
    }

    @AfterEach
    void back() {
        System.clearProperty(StatsFiles.DIR_PROPERTY);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> statsJson() {
        DmapCommandTest.Result r = DmapCommandTest.dmap("stats", "--json");
        assertEquals(Dmap.OK, r.code(), r.out() + r.err());
        return GSON.fromJson(r.out(), Map.class);
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> list(Object o) {
        return (List<Map<String, Object>>) o;
    }

    @Test
    @SuppressWarnings("unchecked")
    void statsShowsTheApertureAndMappingsOfARunningWatchAndNothingOnceItStops() throws Exception {
        Path f = EXT4.file("stats.bin");
        Workloads.write(f, 0, 4 * MiB, 9);
        Workloads.syncAndEvict(f);
        String loop = Path.of(EXT4.filesystem().loopDevice()).getFileName().toString();
        Path topology = Files.writeString(tmp.resolve("topology"), "bar " + loop + " 1M\n");
        long me = ProcessHandle.current().pid();
        StringWriter out = new StringWriter(), err = new StringWriter();
        AtomicInteger code = new AtomicInteger(-1);
        Thread watch = Thread.ofPlatform().start(() -> code.set(Dmap.run(new PrintWriter(out, true), new PrintWriter(err, true),
                "watch", f.toString(), "--topology", topology.toString(), "--window", "256K", "--count", "1", "--for", "30")));
        Map<String, Object> device = null, process = null;
        try {
            long deadline = System.nanoTime() + 25_000_000_000L;
            while (!out.toString().contains("by / detail") && watch.isAlive() && System.nanoTime() < deadline) Thread.sleep(10);
            assertTrue(out.toString().contains("by / detail"), "the watch started: " + out + err);
            // The watch publishes every second: wait for a snapshot taken after its first read.
            while (System.nanoTime() < deadline) {
                Map<String, Object> j = statsJson();
                assertEquals(run.toString(), j.get("dir"));
                for (Map<String, Object> p : list(j.get("processes"))) {
                    for (Map<String, Object> d : list(p.get("devices"))) {
                        if (d.get("name").equals(loop) && ((Long) d.get("used_bytes")) > 0) {
                            device = d;
                            process = p;
                        }
                    }
                }
                if (device != null) break;
                Thread.sleep(100);
            }
            assertTrue(device != null, "a snapshot shows " + loop + "'s aperture in use: " + statsJson());
            assertEquals(me, process.get("pid"));
            assertTrue(((String) process.get("command")).startsWith("dmap watch "), process.toString());
            assertTrue(process.get("start_time") instanceof Long && process.get("updated_ms") instanceof Long, process.toString());
            // 16 windows of 256 KiB over a 1 MiB aperture: 4 direct, the other 12 refused.
            assertEquals(MiB, device.get("aperture_bytes"));
            assertEquals(MiB, device.get("used_bytes"));
            assertEquals(0L, device.get("free_bytes"));
            assertEquals(0L, device.get("largest_free_bytes"));
            assertEquals(0L, device.get("free_windows"));
            assertEquals(4L, device.get("windows"));
            assertEquals("refuse", device.get("when_full"));
            assertTrue((Long) device.get("refusals") >= 12, device.toString());
            assertEquals(0L, device.get("reclaims"));
            assertEquals(4L, device.get("peer_mappings"));
            assertTrue((Long) process.get("mappings") >= 16, process.toString());
            Map<String, Object> b = (Map<String, Object>) process.get("bindings");
            assertTrue((Long) b.get("faults") >= 16 && (Long) b.get("direct_bytes") >= MiB, b.toString());
            for (String k : List.of("refaults", "invalidations", "retries", "reads", "incoherent_reads", "fallback_bytes")) {
                assertTrue(b.get(k) instanceof Long, k + " in " + b);
            }
            DmapCommandTest.Result text = DmapCommandTest.dmap("stats", "--pid", Long.toString(me));
            assertEquals(Dmap.OK, text.code(), text.out() + text.err());
            assertTrue(text.out().contains("pid " + me + " (dmap watch ") && text.out().contains("largest free"), text.out());
            assertTrue(text.out().matches("(?s).*\\n  " + loop + " +1 MiB +1 MiB +0 B +0 B +0 +4 +refuse +\\d+ +0 +4\\n.*"), text.out());
            Commands.run("dd", "if=/dev/zero", "of=" + f, "bs=4096", "count=1", "conv=notrunc", "status=none");
        } finally {
            watch.join(40_000);
            Files.deleteIfExists(f);
        }
        assertFalse(watch.isAlive(), "the watch stopped after one invalidation: " + out + err);
        assertEquals(Dmap.OK, code.get(), err.toString());
        try (var files = Files.list(run)) {
            assertEquals(List.of(), files.toList(), "the snapshot is removed when the watch stops");
        }
        assertEquals(List.of(), statsJson().get("processes"));
        DmapCommandTest.Result none = DmapCommandTest.dmap("stats", "--pid", Long.toString(me));
        assertEquals(Dmap.FAILED, none.code(), none.out() + none.err());
        assertTrue(none.err().contains("no stats from process " + me), none.err());
    }

    @Test
    void statsShowsAnExportersApertureAndItsPeerMappings() throws Exception {
        Topology t = Topology.parse("bar gpu7 1M\n", "test topology", PciTree.EMPTY);
        long me = ProcessHandle.current().pid();
        try (AddressSpace mm = AddressSpace.create(t); SoftwareDevice gpu = SoftwareDevice.create("gpu7", t);
             SoftwareDevice nic = SoftwareDevice.create("nic7", t); ExportedMemory e = gpu.export(2 * MiB);
             Vma vma = e.mmap(mm)) {
            DeviceMapping m = vma.ops().deviceMap(vma, new MapRequest(nic.endpoint(), 0, 2 * MiB));
            assertEquals(MiB, m.directBytes());
            Files.createDirectories(run);
            Files.writeString(run.resolve(me + "-1.json"), Json.write(StatsFiles.snapshot(
                    Stats.of(List.of(), 0, 0, 0), me, StatsFiles.startTime(me).orElseThrow(), "test exporter")));
            Map<String, Object> x = null;
            for (Map<String, Object> p : list(statsJson().get("processes"))) {
                for (Map<String, Object> d : list(p.get("exporters"))) if (d.get("name").equals("gpu7")) x = d;
            }
            assertTrue(x != null, "the snapshot shows gpu7 as an exporter: " + statsJson());
            assertEquals(MiB, x.get("aperture_bytes"));
            assertEquals(MiB, x.get("used_bytes"));
            assertEquals(0L, x.get("free_bytes"));
            assertEquals(0L, x.get("largest_free_bytes"));
            assertEquals(1L, x.get("windows"));
            assertEquals("refuse", x.get("when_full"));
            assertEquals(1L, x.get("refusals"));
            assertEquals(0L, x.get("reclaims"));
            assertEquals(1L, x.get("exports"));
            assertEquals(2 * MiB, x.get("exported_bytes"));
            assertEquals(1L, x.get("live_mappings"));
            assertEquals(0L, x.get("revoked_mappings"));
            DmapCommandTest.Result text = DmapCommandTest.dmap("stats", "--pid", Long.toString(me));
            assertEquals(Dmap.OK, text.code(), text.out() + text.err());
            assertTrue(text.out().matches("(?s).*\\n  gpu7 +1 MiB +1 MiB +0 B +0 B +0 +1 +refuse +1 +0 +1 +0 +2 MiB\\n.*"), text.out());
            vma.ops().deviceUnmap(vma, nic.endpoint(), m);
        }
    }

    @Test
    void staleSnapshotsOfGoneOrReusedPidsAreRemovedAndNamed() throws Exception {
        Files.createDirectories(run, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                java.nio.file.attribute.PosixFilePermissions.fromString("rwx------")));
        long me = ProcessHandle.current().pid();
        // pid_max is at most 4194304: this pid never exists.
        Path gone = Files.writeString(run.resolve("999999999-1.json"), "{\"pid\": 999999999, \"start_time\": 5}");
        long started = StatsFiles.startTime(me).orElseThrow();
        Path reused = Files.writeString(run.resolve(me + "-7.json"), "{\"pid\": " + me + ", \"start_time\": " + (started + 1) + "}");
        Map<String, Object> j = statsJson();
        assertEquals(List.of(), j.get("processes"));
        List<Map<String, Object>> ignored = list(j.get("ignored"));
        assertEquals(2, ignored.size(), ignored.toString());
        assertTrue(ignored.stream().anyMatch(i -> i.get("file").equals(gone.toString())
                && i.get("why").toString().contains("process 999999999 is gone")), ignored.toString());
        assertTrue(ignored.stream().anyMatch(i -> i.get("file").equals(reused.toString())
                && i.get("why").toString().contains("pid " + me + " is another program now")), ignored.toString());
        assertFalse(Files.exists(gone));
        assertFalse(Files.exists(reused));
    }

    @Test
    void aDirectoryOthersCanWriteIsNotRead() throws Exception {
        Files.createDirectories(run);
        Files.setPosixFilePermissions(run, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
        DmapCommandTest.Result r = DmapCommandTest.dmap("stats");
        assertEquals(Dmap.FAILED, r.code(), r.out() + r.err());
        assertTrue(r.err().contains(run + " is owned by uid") && r.err().contains("writable by no one else"), r.err());
    }

    /** dmap watch as root does not write into a directory others can write to, nor through a link: one line, nothing published. */
    @Test
    void thePublisherRefusesADirectoryItCannotTrust() throws Exception {
        Path open = Files.createDirectories(tmp.resolve("open"));
        Files.setPosixFilePermissions(open, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
        Path elsewhere = Files.createDirectories(tmp.resolve("elsewhere"));
        Path link = Files.createSymbolicLink(tmp.resolve("link"), elsewhere);
        for (Path dir : List.of(open, link)) {
            System.setProperty(StatsFiles.DIR_PROPERTY, dir.toString());
            StringWriter err = new StringWriter();
            try (io.directmap.fs.FsStack mm = io.directmap.fs.FsStack.open();
                 var p = StatsFiles.Publisher.start(mm, "test", new PrintWriter(err, true))) {
                assertFalse(Files.exists(p.file()), "nothing published in " + dir + " for " + mm);
            }
            String e = err.toString();
            assertEquals(1, e.lines().count(), e);
            assertTrue(e.contains("stats are not published") && e.contains("no stats are written there"), e);
            assertTrue(dir == link ? e.contains("is a symbolic link") : e.contains("writable by no one else"), e);
            try (var files = Files.list(dir)) {
                assertEquals(List.of(), files.toList(), "nothing written through " + dir);
            }
        }
    }

    /** A publisher killed (kill -9) between writing and renaming leaves .PID-X.tmp: removed once its process is gone. */
    @Test
    void aTemporaryFileOfAGoneProcessIsRemovedWhenListing() throws Exception {
        Files.createDirectories(run, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                java.nio.file.attribute.PosixFilePermissions.fromString("rwx------")));
        long me = ProcessHandle.current().pid();
        Path orphan = Files.writeString(run.resolve(".999999999-abc123.tmp"), "{\"pid\": 999");
        Path mine = Files.writeString(run.resolve("." + me + "-def456.tmp"), "{");
        Map<String, Object> j = statsJson();
        assertFalse(Files.exists(orphan), "the gone process's temporary file is removed");
        assertTrue(Files.exists(mine), "a live process's temporary file is its own");
        List<Map<String, Object>> ignored = list(j.get("ignored"));
        assertTrue(ignored.stream().anyMatch(i -> i.get("file").equals(orphan.toString())
                && i.get("why").toString().contains("process 999999999 is gone")), ignored.toString());
    }

    /** A non-root user reading root's directory is told to run as root, not to remove it. */
    @Test
    void rootsDirectoryReadByAnotherUserSaysRunAsRoot() {
        var mode = java.nio.file.attribute.PosixFilePermissions.fromString("rwx------");
        String asNobody = StatsFiles.untrusted(Path.of("/run/directmap"), false, 0, mode, 65534, "its stats files are not read");
        assertTrue(asNobody.contains("run as root") && !asNobody.contains("remove it"), asNobody);
        String othersDir = StatsFiles.untrusted(Path.of("/run/directmap"), false, 1000, mode, 0, "its stats files are not read");
        assertTrue(othersDir.contains("remove it and let dmap watch make it again"), othersDir);
        assertEquals(null, StatsFiles.untrusted(Path.of("/run/directmap"), false, 0, mode, 0, "x"));
    }
}
