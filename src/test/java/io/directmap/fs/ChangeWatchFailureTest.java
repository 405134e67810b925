package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.fs.ChangeWatch.Change;
import io.directmap.fs.ChangeWatch.Refused;
import io.directmap.fs.ChangeWatch.Watch;
import io.directmap.fs.ChangeWatchTest.Child;
import io.directmap.fs.ChangeWatchTest.Recorder;
import io.directmap.sys.FileHandle;
import io.directmap.sys.SysException;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What each fanotify failure leaves behind (fault points fanotify_init, fanotify_mark,
 * fanotify_read, fanotify_response), and a listener process killed with SIGKILL while it holds
 * a writer: nothing stays blocked or denied, nothing stays marked, no descriptor is left open.
 */
class ChangeWatchFailureTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    final List<AutoCloseable> toClose = new ArrayList<>();

    int handlesBefore;
    long readersBefore;

    @BeforeEach
    void count() {
        handlesBefore = FileHandle.openCount();
        readersBefore = ChangeWatchTest.readers();
    }

    @AfterEach
    void closeAllAndCheck() throws Exception {
        closeAll();
        assertEquals(readersBefore, ChangeWatchTest.readers(), "the reader thread is gone");
        ChangeWatchTest.await("every descriptor closed: " + FileHandle.openCount() + " open, " + handlesBefore + " before",
                () -> FileHandle.openCount() == handlesBefore);
    }

    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) toClose.get(i).close();
        toClose.clear();
    }

    <T extends AutoCloseable> T keep(T c) {
        toClose.add(c);
        return c;
    }

    Path newFile(String name) throws IOException {
        Path p = EXT4.file(name + "-" + System.nanoTime());
        Files.write(p, new byte[ChangeWatchTest.SIZE]);
        return p;
    }

    Child dd(Path p) throws IOException {
        return keep(new Child(List.of("dd", "if=/dev/urandom", "of=" + p, "bs=4096", "count=1", "conv=notrunc", "status=none")));
    }

    @Test
    void aFailedInitGivesAWatchThatSaysWhyAndRefuses() throws Exception {
        int handles = FileHandle.openCount();
        try (var fault = Faults.enable(FaultPoint.FANOTIFY_INIT)) {
            ChangeWatch w = keep(ChangeWatch.open());
            assertFalse(w.available());
            assertTrue(w.why().contains("fanotify_init") && w.why().contains("EMFILE") && w.why().contains("max_user_groups"), w.why());
            OpenFile f = keep(OpenFile.open(newFile("init")));
            Refused r = assertInstanceOf(Refused.class, w.watch(f, new Recorder()));
            assertEquals(ChangeWatch.Reason.UNAVAILABLE, r.reason());
            assertTrue(fault.fired() >= 1);
        }
        closeAll();
        assertEquals(handles, FileHandle.openCount());
    }

    @Test
    void aFailedMarkThrowsAndLeavesNothingMarked() throws Exception {
        ChangeWatch w = keep(ChangeWatch.open());
        Path p = newFile("mark");
        OpenFile f = keep(OpenFile.open(p));
        int handles = FileHandle.openCount();
        try (var fault = Faults.enable(FaultPoint.FANOTIFY_MARK, 1.0, 1)) {
            SysException e = assertThrows(SysException.class, () -> w.watch(f, new Recorder()));
            assertTrue(e.getMessage().contains(p.toString()) && e.getMessage().contains("ENOSPC"), e.getMessage());
            assertEquals(1, fault.fired());
        }
        assertEquals(handles, FileHandle.openCount());
        assertEquals(0, dd(p).await());
        assertEquals(0, w.asked() + w.answeredAtOnce(), "nothing is marked");
        Recorder r = new Recorder();
        assertInstanceOf(Watch.class, w.watch(f, r));
        assertEquals(0, dd(p).await());
        assertEquals(Change.Kind.WRITE, r.changes().get(0).kind());
    }

    @Test
    void aReadThatFailsOnceLosesNoEvent() throws Exception {
        ChangeWatch w = keep(ChangeWatch.open());
        Path p = newFile("read-once");
        Recorder r = new Recorder();
        assertInstanceOf(Watch.class, w.watch(keep(OpenFile.open(p)), r));
        try (var fault = Faults.enable(FaultPoint.FANOTIFY_READ, 1.0, 1)) {
            assertEquals(0, dd(p).await());
            assertEquals(1, fault.fired());
        }
        assertEquals(Change.Kind.WRITE, r.changes().get(0).kind());
        assertTrue(w.available());
    }

    @Test
    void readsThatKeepFailingTellEveryListenerAndLetWritersGo() throws Exception {
        ChangeWatch w = keep(ChangeWatch.open());
        Path p = newFile("read-always");
        Recorder r = new Recorder();
        assertInstanceOf(Watch.class, w.watch(keep(OpenFile.open(p)), r));
        try (var fault = Faults.enable(FaultPoint.FANOTIFY_READ)) {
            assertEquals(0, dd(p).await(), "the kernel allows what it held once the group is closed");
            assertEquals(3, fault.fired());
        }
        ChangeWatchTest.await("the listener told", () -> !r.changes().isEmpty());
        Change c = r.changes().get(0);
        assertEquals(new Change(Change.Kind.UNKNOWN, 0, Long.MAX_VALUE, c.detail()), c);
        assertTrue(c.detail().contains("fanotify_read"), c.detail());
        assertFalse(w.available());
        assertTrue(w.why().contains("can no longer be heard"), w.why());
        assertEquals(0, dd(p).await(), "nothing is held any more");
    }

    @Test
    void anAnswerThatFailsOnceIsWrittenAgain() throws Exception {
        ChangeWatch w = keep(ChangeWatch.open());
        Path p = newFile("answer-once");
        Recorder r = new Recorder();
        assertInstanceOf(Watch.class, w.watch(keep(OpenFile.open(p)), r));
        try (var fault = Faults.enable(FaultPoint.FANOTIFY_RESPONSE, 1.0, 1)) {
            assertEquals(0, dd(p).await());
            assertEquals(1, fault.fired());
        }
    }

    @Test
    void anAnswerThatCannotBeWrittenHoldsTheWriterUntilTheWatchCloses() throws Exception {
        ChangeWatch w = ChangeWatch.open();
        toClose.add(w);
        Path p = newFile("answer-never");
        Recorder r = new Recorder();
        assertInstanceOf(Watch.class, w.watch(keep(OpenFile.open(p)), r));
        Child held;
        try (var fault = Faults.enable(FaultPoint.FANOTIFY_RESPONSE)) {
            held = dd(p);
            ChangeWatchTest.await("two tries to answer", () -> fault.fired() >= 2);
            assertTrue(held.process.isAlive(), "no answer was written: the open waits");
            assertEquals("open", r.heard.get(0).what());
        }
        w.close();
        assertEquals(0, held.await(), "closing the group answers what was pending");
    }

    @Test
    void aListenerProcessKilledWhileHoldingAWriterLetsItGoAtOnce() throws Exception {
        Path p = newFile("kill");
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process child = new ProcessBuilder(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), ChangeWatchChild.class.getName(), p.toString()))
                .redirectErrorStream(true).start();
        toClose.add(() -> {
            child.destroyForcibly();
            child.waitFor(ChangeWatchTest.WAIT_S, TimeUnit.SECONDS);
        });
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        Thread.ofVirtual().start(() -> {
            try (BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
                for (String l; (l = out.readLine()) != null; ) lines.add(l);
            } catch (IOException e) {
                lines.add("read failed: " + e);
            }
        });
        awaitLine(lines, "watching");
        Child held = dd(p);
        awaitLine(lines, "holding an open by dd (pid " + held.process.pid() + ")");
        assertTrue(held.process.isAlive());
        child.destroyForcibly();       // SIGKILL
        assertTrue(child.waitFor(ChangeWatchTest.WAIT_S, TimeUnit.SECONDS));
        assertEquals(0, held.await(), "the kernel answered the pending open when the group went");
        assertEquals(0, dd(p).await(), "and nothing is marked any more");
    }

    /** Waits (bounded) for the child to print want; fails with everything it printed otherwise. */
    static void awaitLine(BlockingQueue<String> lines, String want) throws InterruptedException {
        List<String> seen = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(ChangeWatchTest.WAIT_S);
        while (System.nanoTime() < deadline) {
            String l = lines.poll(100, TimeUnit.MILLISECONDS);
            if (l == null) continue;
            if (l.equals(want)) return;
            seen.add(l);
        }
        throw new AssertionError("the child did not print '" + want + "' within " + ChangeWatchTest.WAIT_S + " s; it printed " + seen);
    }
}
