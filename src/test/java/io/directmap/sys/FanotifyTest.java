package io.directmap.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The binding on a real ext4, without the watch around it: which events a reader's dd raises
 * and with what range, that a deny's errno reaches it (and an errno the kernel would refuse is
 * sent as a plain deny, never left pending), that quiet descriptors raise nothing, that shmem
 * refuses the mark.
 */
class FanotifyTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    static final long WAIT_S = 20;

    @Test
    void theProbeSaysItWorksHere() {
        Fanotify.Probe p = Fanotify.probe();
        assertTrue(p.works(), p.why());     // root, 6.18: the class runs only where ScratchFs can (root)
    }

    @Test
    void aReadRaisesAnOpenAndAPageRoundedAccessAndADenyErrnoReachesTheReader() throws Exception {
        Path p = EXT4.file("read-deny-" + System.nanoTime());
        Files.write(p, new byte[3 * 4096]);
        try (Fanotify g = Fanotify.open("test"); FileHandle h = FileHandle.openRead(p)) {
            g.mark(h, Fanotify.FAN_OPEN_PERM | Fanotify.FAN_PRE_ACCESS);
            java.lang.Process dd = new ProcessBuilder("dd", "if=" + p, "of=/dev/null", "bs=100", "skip=41", "count=1", "status=none")
                    .redirectErrorStream(true).start();
            Fanotify.Event open = next(g);
            assertEquals(Fanotify.FAN_OPEN_PERM, open.mask());
            assertEquals(dd.pid(), open.tid());
            assertEquals(-1, open.offset());
            g.respond(open, Fanotify.allow());
            open.file().close();
            Fanotify.Event access = next(g);
            assertEquals(Fanotify.FAN_PRE_ACCESS, access.mask());
            assertEquals(4096, access.offset(), "100 bytes at 4100: the page 4096+4096");
            assertEquals(4096, access.count());
            g.respond(access, Fanotify.response(false, Errno.EIO));
            access.file().close();
            assertTrue(dd.waitFor(WAIT_S, TimeUnit.SECONDS));
            assertNotEquals(0, dd.exitValue());
            String said = new String(dd.getInputStream().readAllBytes());
            assertTrue(said.contains("Input/output error"), said);
        }
    }

    @Test
    void anErrnoTheKernelWouldRefuseIsSentAsAPlainDeny() throws Exception {
        assertEquals(Fanotify.response(false, Errno.EPERM) & 0xff, Fanotify.response(false, Errno.EINVAL));
        assertTrue(Fanotify.deniable(26));
        assertFalse(Fanotify.deniable(Errno.EINVAL));
        Path p = EXT4.file("deny-einval-" + System.nanoTime());
        Files.write(p, new byte[4096]);
        try (Fanotify g = Fanotify.open("test"); FileHandle h = FileHandle.openRead(p)) {
            g.mark(h, Fanotify.FAN_OPEN_PERM);
            java.lang.Process dd = new ProcessBuilder("dd", "if=/dev/zero", "of=" + p, "count=1", "conv=notrunc", "status=none")
                    .redirectErrorStream(true).start();
            Fanotify.Event open = next(g);
            g.respond(open, Fanotify.response(false, Errno.EINVAL));
            open.file().close();
            assertTrue(dd.waitFor(WAIT_S, TimeUnit.SECONDS), "answered, not left pending");
            String said = new String(dd.getInputStream().readAllBytes());
            assertTrue(said.contains("Operation not permitted"), said);
        }
    }

    @Test
    void quietDescriptorsRaiseNoEvents() throws Exception {
        Path p = EXT4.file("quiet-" + System.nanoTime());
        byte[] data = new byte[8192];
        for (int i = 0; i < data.length; i++) data[i] = (byte) (i * 7);
        Files.write(p, data);
        try (Fanotify g = Fanotify.open("test"); FileHandle h = FileHandle.openRead(p)) {
            FileHandle read = Fanotify.quietOpen(h, false), write = Fanotify.quietOpen(h, true);
            try (read; write; Arena a = Arena.ofConfined()) {
                g.mark(h, Fanotify.FAN_OPEN_PERM | Fanotify.FAN_PRE_ACCESS);
                MemorySegment buf = a.allocate(8192);
                assertEquals(8192, read.preadFully(buf, 0));
                assertEquals(data[8191], buf.get(ValueLayout.JAVA_BYTE, 8191));
                write.pwriteFully(buf.asSlice(0, 4096), 4096);
                assertEquals(List.of(), g.read(200), "quiet reads and writes raise nothing");
            }
        }
    }

    @Test
    void shmemRefusesPreContentMarks() throws Exception {
        try (Fanotify g = Fanotify.open("test"); FileHandle m = Memfd.create("dmap-fanotify-test", 4096)) {
            SysException e = assertThrows(SysException.class, () -> g.mark(m, Fanotify.FAN_PRE_ACCESS));
            assertEquals(Errno.EOPNOTSUPP, e.errno());
            assertTrue(e.getMessage().contains("tmpfs"), e.getMessage());
        }
    }

    /** The next event (bounded wait). */
    static Fanotify.Event next(Fanotify g) throws SysException {
        List<Fanotify.Event> got = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        while (got.isEmpty() && System.nanoTime() < deadline) got.addAll(g.read(100));
        assertEquals(1, got.size(), got.toString());
        assertNotNull(got.get(0).file());
        return got.get(0);
    }
}
