package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fs.ChangeWatch.Change;
import io.directmap.fs.ChangeWatch.Refused;
import io.directmap.fs.ChangeWatch.Task;
import io.directmap.fs.ChangeWatch.Verdict;
import io.directmap.fs.ChangeWatch.Watch;
import io.directmap.sys.Errno;
import io.directmap.sys.FileHandle;
import io.directmap.sys.TaskSyscall.Access;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The change watch on a real ext4: other processes (dd, truncate, fallocate: argument lists, no
 * shell) and this JVM open, write, truncate, punch and map watched files, and the listener hears
 * each with the range the kernel reports (whole pages) before it happens; a deny reaches the
 * writer as ETXTBSY; reads and quiet handles ask nothing; a slow listener holds only its own file.
 */
class ChangeWatchTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    static final int SIZE = 64 * 1024;
    static final long WAIT_S = 20;

    ChangeWatch watch;
    final List<Child> children = new ArrayList<>();
    final List<OpenFile> files = new ArrayList<>();

    /** One call a listener heard. */
    record Heard(String what, Task task, Change change, Access.Open open) {}

    /** Records everything; answers with verdict (allow unless set). */
    static class Recorder implements ChangeWatch.Listener {
        final List<Heard> heard = new java.util.concurrent.CopyOnWriteArrayList<>();
        volatile Verdict verdict = Verdict.ALLOW;

        @Override public Verdict opening(Task t, Access.Open a) {
            heard.add(new Heard("open", t, null, a));
            return verdict;
        }

        @Override public Verdict changing(Task t, Change c) {
            heard.add(new Heard("change", t, c, null));
            return verdict;
        }

        @Override public void writerClosed(Task t) { heard.add(new Heard("closed", t, null, null)); }

        List<Change> changes() { return heard.stream().filter(h -> h.change() != null).map(Heard::change).toList(); }
    }

    int handlesBefore;
    long readersBefore;

    @BeforeEach
    void open() {
        handlesBefore = FileHandle.openCount();
        readersBefore = readers();
        watch = ChangeWatch.open();
        assertTrue(watch.available(), watch.why());
    }

    @AfterEach
    void close() throws IOException, InterruptedException {
        for (Child c : children) c.close();
        watch.close();
        for (OpenFile f : files) f.close();
        assertEquals(readersBefore, readers(), "the reader thread is gone");
        // Answers of listeners released in a test's finally may still be on their way.
        await("every descriptor closed (events, anchors, quiet handles): " + FileHandle.openCount() + " open, "
                + handlesBefore + " before", () -> FileHandle.openCount() == handlesBefore);
    }

    /** Live platform threads that read fanotify events. */
    static long readers() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals("dmap-fanotify")).count();
    }

    Path newFile(String name) throws IOException {
        Path p = EXT4.file(name + "-" + System.nanoTime());
        byte[] data = new byte[SIZE];
        new Random(7).nextBytes(data);
        Files.write(p, data);
        return p;
    }

    OpenFile openFile(Path p) throws IOException {
        OpenFile f = OpenFile.open(p);
        files.add(f);
        return f;
    }

    Watch watch(Path p, ChangeWatch.Listener l) throws IOException {
        return assertInstanceOf(Watch.class, watch.watch(openFile(p), l));
    }

    /** A command run with its output kept; killed at close if still running. */
    static final class Child implements AutoCloseable {
        final Process process;
        final Path out;

        Child(List<String> command) throws IOException {
            out = Files.createTempFile("dmap-core-child-", ".txt");
            process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        }

        int await() throws Exception {
            assertTrue(process.waitFor(WAIT_S, TimeUnit.SECONDS), "still blocked after " + WAIT_S + " s: " + process.info());
            return process.exitValue();
        }

        String output() throws IOException { return Files.readString(out); }

        @Override public void close() throws IOException {
            if (process.isAlive()) process.destroyForcibly();
            try {
                process.waitFor(WAIT_S, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            Files.deleteIfExists(out);
        }
    }

    Child run(String... command) throws IOException {
        Child c = new Child(List.of(command));
        children.add(c);
        return c;
    }

    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("not within " + WAIT_S + " s: " + what);
            Thread.sleep(5);
        }
    }

    @Test
    void writesTruncatesAndPunchesOfOtherProcessesArriveWithTheirRanges() throws Exception {
        Path p = newFile("changes");
        Recorder r = new Recorder();
        watch(p, r);

        assertEquals(0, run("dd", "if=/dev/zero", "of=" + p, "bs=100", "count=1", "seek=82", "conv=notrunc", "status=none").await());
        await("dd's close", () -> r.heard.stream().anyMatch(h -> h.what().equals("closed")));
        // 100 bytes at 8200: the kernel reports the page 8192+4096
        assertEquals(List.of(new Change(Change.Kind.WRITE, 8192, 4096, r.changes().get(0).detail())), r.changes());
        assertTrue(r.changes().get(0).detail().startsWith("write"), r.changes().get(0).detail());
        Heard open = r.heard.get(0);
        assertEquals("open", open.what());
        assertTrue(open.open().forWrite() && !open.open().truncates(), open.toString());
        assertEquals("dd", open.task().command());

        r.heard.clear();
        assertEquals(0, run("fallocate", "-p", "-o", "4096", "-l", "8192", p.toString()).await());
        await("fallocate's change", () -> !r.changes().isEmpty());
        assertEquals(Change.Kind.PUNCH_HOLE, r.changes().get(0).kind());
        assertEquals(4096, r.changes().get(0).offset());
        assertEquals(8192, r.changes().get(0).length());

        r.heard.clear();
        assertEquals(0, run("truncate", "-s", "5000", p.toString()).await());
        await("truncate's change", () -> !r.changes().isEmpty());
        Change t = r.changes().get(0);
        assertEquals(Change.Kind.TRUNCATE, t.kind());
        assertEquals(5000, t.offset());
        assertEquals(Long.MAX_VALUE, t.end());
        assertEquals(5000, Files.size(p));
    }

    /** Interested only in [0, 4096): what a listener with something mapped there says. */
    static class FirstPage extends Recorder {
        final List<long[]> questions = new java.util.concurrent.CopyOnWriteArrayList<>();

        @Override public boolean interested(long start, long end) {
            questions.add(new long[] {start, end});
            return start < 4096;
        }

        @Override public Verdict opening(Task t, Access.Open a) {
            super.opening(t, a);
            return Verdict.ALLOW;     // the verdict is for changes only
        }
    }

    @Test
    void aWriteNoListenerIsInterestedInIsAnsweredAtOnceOneInsideIsAsked() throws Exception {
        Path p = newFile("interested");
        FirstPage r = new FirstPage();
        watch(p, r);

        long atOnce = watch.answeredAtOnce(), asked = watch.asked();
        assertEquals(0, run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=2", "seek=2", "conv=notrunc", "status=none").await());
        await("dd's close", () -> r.heard.stream().anyMatch(h -> h.what().equals("closed")));
        assertEquals(List.of(), r.changes(), "two writes outside [0, 4096): the listener is not asked");
        assertEquals(List.of(List.of(8192L, 12288L), List.of(12288L, 16384L)),
                r.questions.stream().map(q -> List.of(q[0], q[1])).toList());
        assertEquals(asked + 1, watch.asked(), "only the open for writing was handed to the listener");
        assertTrue(watch.answeredAtOnce() >= atOnce + 2, "both writes answered at once: " + (watch.answeredAtOnce() - atOnce));
        assertArrayEquals(new byte[8192], java.util.Arrays.copyOfRange(Files.readAllBytes(p), 8192, 16384));

        r.heard.clear();
        r.verdict = new Verdict.Deny(Errno.EBUSY, "the first page is pinned in a test");
        byte[] before = Files.readAllBytes(p);
        Child dd = run("dd", "if=/dev/zero", "of=" + p, "bs=100", "count=1", "seek=1", "conv=notrunc", "status=none");
        assertNotEquals(0, dd.await(), "a write inside the range is asked, and the deny reaches it");
        assertEquals(List.of(Change.Kind.WRITE), r.changes().stream().map(Change::kind).toList());
        assertEquals(0, r.changes().get(0).offset());
        assertArrayEquals(before, Files.readAllBytes(p));
    }

    @Test
    void anOpenThatTruncatesSaysSo() throws Exception {
        Path p = newFile("o-trunc");
        Recorder r = new Recorder();
        watch(p, r);
        assertEquals(0, run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=1", "status=none").await());   // O_TRUNC
        assertEquals(new Access.Open(true, true), r.heard.get(0).open());
        assertEquals(4096, Files.size(p));
    }

    @Test
    void aDenyReachesTheWriterAsEtxtbsyAndChangesNothing() throws Exception {
        Path p = newFile("deny");
        byte[] before = Files.readAllBytes(p);
        Recorder r = new Recorder();
        r.verdict = new Verdict.Deny(26, "pinned by a test");
        watch(p, r);

        Child dd = run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=1", "conv=notrunc", "status=none");
        assertNotEquals(0, dd.await());
        assertTrue(dd.output().contains("Text file busy"), dd.output());
        FileSystemException e = assertThrows(FileSystemException.class,
                () -> FileChannel.open(p, StandardOpenOption.WRITE).close());
        assertTrue(String.valueOf(e.getReason()).contains("Text file busy"), e.toString());
        assertArrayEquals(before, Files.readAllBytes(p));
    }

    @Test
    void everyListenerIsAskedAndAnyDenyWins() throws Exception {
        Path p = newFile("any-deny");
        Recorder allows = new Recorder(), denies = new Recorder();
        denies.verdict = new Verdict.Deny(Errno.EBUSY, "busy in a test");
        watch(p, allows);
        watch(p, denies);
        Child dd = run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=1", "conv=notrunc", "status=none");
        assertNotEquals(0, dd.await());
        assertTrue(dd.output().contains("Device or resource busy"), dd.output());
        assertEquals(1, allows.heard.size(), allows.heard.toString());
        assertEquals(1, denies.heard.size(), denies.heard.toString());
    }

    @Test
    void writesAndSharedWritableMapsOfThisJvmAreSeen() throws Exception {
        Path p = newFile("same-jvm");
        Recorder r = new Recorder();
        watch(p, r);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE);
             Arena maps = Arena.ofConfined()) {
            ch.write(ByteBuffer.wrap(new byte[10]), 12288 + 5);
            assertTrue(r.changes().contains(new Change(Change.Kind.WRITE, 12288, 4096, r.changes().get(0).detail())),
                    r.changes().toString());
            Task writer = r.heard.get(r.heard.size() - 1).task();
            assertEquals(ProcessHandle.current().pid(), writer.pid(), "FAN_REPORT_TID: the thread's process");
            assertNotEquals(writer.pid(), writer.tid(), "a JUnit thread, not the JVM's first: " + writer);
            MemorySegment map = ch.map(FileChannel.MapMode.READ_WRITE, 0, 8192, maps);
            map.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 4100, (byte) 'Z');
            assertTrue(r.changes().stream().anyMatch(c -> c.kind() == Change.Kind.MMAP_WRITE && c.offset() == 0 && c.length() == 8192),
                    r.changes().toString());
            r.heard.clear();
            ch.read(ByteBuffer.allocate(100), 0);
            ch.map(FileChannel.MapMode.READ_ONLY, 0, 4096, maps);   // MAP_SHARED, but the descriptor is writable
        }
        List<Change> afterRead = r.changes();
        assertEquals(1, afterRead.size(), "a read asks nothing; a shared map of a writable descriptor may be made writable: " + afterRead);
        assertEquals(Change.Kind.MMAP_WRITE, afterRead.get(0).kind());
    }

    @Test
    void readsAskNothingAndQuietHandlesRaiseNoEvents() throws Exception {
        Path p = newFile("quiet");
        Recorder r = new Recorder();
        Watch w = watch(p, r);
        assertEquals(0, run("dd", "if=" + p, "of=/dev/null", "bs=4096", "status=none").await());
        assertEquals(List.of(), r.heard);
        assertEquals(0, watch.asked());

        byte[] want = Files.readAllBytes(p);
        long atOnce = watch.answeredAtOnce();
        FileHandle quiet = w.quietHandle(false);
        FileHandle quietWrite = w.quietHandle(true);
        long afterOpens = watch.answeredAtOnce();      // the quiet opens themselves are read-only opens of ours
        assertTrue(afterOpens >= atOnce);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(SIZE);
            assertEquals(SIZE, quiet.preadFully(buf, 0));
            assertArrayEquals(want, buf.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            buf.fill((byte) 3);
            quietWrite.pwriteFully(buf.asSlice(0, 4096), 4096);
        }
        assertEquals(afterOpens, watch.answeredAtOnce(), "quiet reads and writes raise no events");
        assertEquals(0, watch.asked());
        assertEquals(List.of(), r.heard);
        byte[] now = Files.readAllBytes(p);
        for (int i = 4096; i < 8192; i++) assertEquals(3, now[i]);
    }

    @Test
    void aBlockedListenerHoldsOnlyItsOwnFilesWriters() throws Exception {
        Path slow = newFile("slow"), fast = newFile("fast");
        CountDownLatch letGo = new CountDownLatch(1);
        CountDownLatch blocking = new CountDownLatch(1);
        Recorder slowListener = new Recorder() {
            @Override public Verdict changing(Task t, Change c) {
                blocking.countDown();
                try {
                    letGo.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return super.changing(t, c);
            }
        };
        Recorder fastListener = new Recorder();
        watch(slow, slowListener);
        watch(fast, fastListener);
        try {
            Child held = run("dd", "if=/dev/zero", "of=" + slow, "bs=4096", "count=1", "conv=notrunc", "status=none");
            assertTrue(blocking.await(WAIT_S, TimeUnit.SECONDS), "the slow listener was not asked");
            assertEquals(0, run("dd", "if=/dev/zero", "of=" + fast, "bs=4096", "count=1", "conv=notrunc", "status=none").await());
            assertEquals(Change.Kind.WRITE, fastListener.changes().get(0).kind());
            assertEquals(0, run("dd", "if=" + slow, "of=/dev/null", "bs=4096", "status=none").await(),
                    "a read of the slow file is answered at once");
            assertTrue(held.process.isAlive(), "the slow file's writer waits for its listener");
            letGo.countDown();
            assertEquals(0, held.await());
        } finally {
            letGo.countDown();
        }
    }

    @Test
    void aListenerThatThrowsStillAnswers() throws Exception {
        Path p = newFile("throws");
        watch(p, new Recorder() {
            @Override public Verdict changing(Task t, Change c) { throw new IllegalStateException("a listener bug"); }
            @Override public Verdict opening(Task t, Access.Open a) { throw new IllegalStateException("a listener bug"); }
        });
        assertEquals(0, run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=1", "conv=notrunc", "status=none").await());
        byte[] now = Files.readAllBytes(p);
        for (int i = 0; i < 4096; i++) assertEquals(0, now[i]);
    }

    @Test
    void closingTheWatchLetsAHeldWriterGo() throws Exception {
        Path p = newFile("close");
        CountDownLatch letGo = new CountDownLatch(1), asked = new CountDownLatch(1);
        watch(p, new Recorder() {
            @Override public Verdict changing(Task t, Change c) {
                asked.countDown();
                try {
                    letGo.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return new Verdict.Deny(Errno.EPERM, "too late");
            }
        });
        try {
            Child held = run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=1", "conv=notrunc", "status=none");
            assertTrue(asked.await(WAIT_S, TimeUnit.SECONDS));
            watch.close();
            assertEquals(0, held.await(), "the kernel allows what was pending when the group closed");
            assertFalse(watch.available());
            assertInstanceOf(Refused.class, watch.watch(openFile(p), new Recorder()));
        } finally {
            letGo.countDown();
        }
    }

    @Test
    void aWriterOpenedBeforeTheMarkIsRefused() throws Exception {
        Path p = newFile("early-writer");
        try (RandomAccessFile early = new RandomAccessFile(p.toFile(), "rw")) {
            Refused r = assertInstanceOf(Refused.class, watch.watch(openFile(p), new Recorder()));
            assertEquals(ChangeWatch.Reason.OPEN_FOR_WRITING, r.reason());
            assertTrue(r.detail().contains(p.toString()), r.detail());
            early.write(1);       // not held: nothing is marked any more
        }
        Recorder rec = new Recorder();
        watch(p, rec);
        assertEquals(0, run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=1", "conv=notrunc", "status=none").await());
        assertFalse(rec.changes().isEmpty());
    }

    @Test
    void closingWhileWritersRunLeavesNoneBlocked() throws Exception {
        Path p = newFile("close-race");
        Recorder r = new Recorder();
        watch(p, r);
        List<Child> writers = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            writers.add(run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=200", "seek=" + i, "conv=notrunc", "status=none"));
        }
        await("the writers heard", () -> r.changes().size() >= 10);
        watch.close();
        for (Child w : writers) assertEquals(0, w.await());
    }

    @Test
    void watchesComingAndGoingWhileAWriterRunsNeverHoldIt() throws Exception {
        Path p = newFile("come-and-go");
        OpenFile f = openFile(p);
        Recorder steady = new Recorder();
        assertInstanceOf(Watch.class, watch.watch(f, steady));
        Child writer = run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=400", "conv=notrunc", "status=none");
        int cycles = 0;
        while (writer.process.isAlive() && cycles < 200) {
            Watch w = assertInstanceOf(Watch.class, watch.watch(f, new Recorder()));
            w.close();
            cycles++;
        }
        assertEquals(0, writer.await());
        assertEquals(400, steady.changes().size(), "the steady watch heard every write");
    }

    @Test
    void aStackHasOneChangeWatchClosedWithIt() throws Exception {
        ChangeWatch mine;
        try (FsStack stack = FsStack.open()) {
            mine = stack.changeWatch();
            assertTrue(mine == stack.changeWatch(), "one per stack");
            assertTrue(mine.available(), mine.why());
            assertInstanceOf(Watch.class, mine.watch(openFile(newFile("stack")), new Recorder()));
        }
        assertFalse(mine.available());
        assertTrue(mine.why().contains("closed"), mine.why());
    }

    @Test
    void aFileOnTmpfsIsRefusedWithTheReason() throws Exception {
        Path shm = Path.of("/dev/shm");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isDirectory(shm) && "tmpfs".equals(Files.getFileStore(shm).type()),
                "/dev/shm is not a tmpfs here");
        Path p = Files.createTempFile(shm, "dmap-core-", ".bin");
        try {
            Files.write(p, new byte[4096]);
            Refused r = assertInstanceOf(Refused.class, watch.watch(openFile(p), new Recorder()));
            assertEquals(ChangeWatch.Reason.FILESYSTEM_REFUSES, r.reason());
            assertTrue(r.detail().contains(p.toString()) && r.detail().contains("EOPNOTSUPP"), r.detail());
            assertEquals(0, run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=1", "conv=notrunc", "status=none").await());
        } finally {
            Files.delete(p);
        }
    }

    @Test
    void aSecondWatchOfAMarkedInodeAcceptsWritersOpenedSinceTheFirstMark() throws Exception {
        Path p = newFile("two-groups");
        Recorder first = new Recorder(), second = new Recorder();
        Watch w = watch(p, first);
        FileHandle quietWriter = w.quietHandle(true);              // a writer of our own, opened after the mark
        try (ChangeWatch other = ChangeWatch.open();
             RandomAccessFile late = new RandomAccessFile(p.toFile(), "rw")) {    // and another one
            assertInstanceOf(Watch.class, other.watch(openFile(p), second), "the first mark covers both writers");
            late.seek(20000);
            late.write(7);                                          // opened after a mark: heard by both groups
            assertEquals(List.of(Change.Kind.WRITE), second.changes().stream().map(Change::kind).toList());
            assertEquals(List.of(Change.Kind.WRITE), first.changes().stream().map(Change::kind).toList());
            assertEquals(16384, second.changes().get(0).offset());
        }
        assertTrue(quietWriter.fd() >= 0);
        w.close();
        // No mark left in this process: a writer open now (the quiet one is closed with w) is checked again.
        try (RandomAccessFile early = new RandomAccessFile(p.toFile(), "rw")) {
            Refused r = assertInstanceOf(Refused.class, watch.watch(openFile(p), new Recorder()));
            assertEquals(ChangeWatch.Reason.OPEN_FOR_WRITING, r.reason());
            early.write(1);
        }
    }

    @Test
    void theLastWatchOfAnInodeRemovesItsMark() throws Exception {
        Path p = newFile("two-watches");
        Recorder a = new Recorder(), b = new Recorder();
        Watch wa = watch(p, a);
        Watch wb = watch(p, b);
        assertEquals(0, run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=1", "conv=notrunc", "status=none").await());
        assertEquals(1, a.changes().size());
        assertEquals(1, b.changes().size());
        wa.close();
        assertEquals(0, run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=1", "conv=notrunc", "status=none").await());
        assertEquals(1, a.changes().size());
        assertEquals(2, b.changes().size());
        wb.close();
        long asked = watch.asked(), atOnce = watch.answeredAtOnce();
        assertEquals(0, run("dd", "if=/dev/zero", "of=" + p, "bs=4096", "count=1", "conv=notrunc", "status=none").await());
        assertEquals(asked, watch.asked(), "no mark, no event");
        assertEquals(atOnce, watch.answeredAtOnce(), "no mark, no event");
    }
}
