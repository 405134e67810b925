package io.directmap.dmabuf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.mm.Invalidation;
import io.directmap.mm.Reason;
import io.directmap.mm.Refusal;
import io.directmap.mm.Refuser;
import io.directmap.mm.Segment;
import io.directmap.pci.Topology;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The dma_buf's lifetime, its attachments and move_notify, with an exporter that records what it is asked. */
class DmaBufTest {
    static final Topology.Endpoint GPU0 = endpoint("gpu0"), GPU1 = endpoint("gpu1");

    static Topology.Endpoint endpoint(String name) {
        try {
            return Topology.parse("", "test").endpoint(name, Topology.Kind.IMPORTER, Optional.empty(), 1L << 30);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** An exporter that counts maps and releases, and says where the bytes are by a generation number. */
    static class Exporter implements DmaBufOps {
        final AtomicInteger maps = new AtomicInteger(), releases = new AtomicInteger();
        final List<String> log = Collections.synchronizedList(new ArrayList<>());

        @Override
        public List<Segment> map() {
            return segments(maps.incrementAndGet());
        }

        static List<Segment> segments(int n) {
            return List.of(new Segment.Fallback(0, 4096 * n, null));
        }

        @Override
        public void release() {
            releases.incrementAndGet();
            log.add("released");
        }
    }

    static Invalidation change() {
        return Invalidation.of(0, 4096, Invalidation.Cause.CHANGED, "a writer", true);
    }

    @Test
    void theLastReleaseOfAttachmentsAndHoldersLetsTheExporterGo() throws Exception {
        Exporter ex = new Exporter();
        DmaBuf buf = DmaBuf.export("data.bin [0, 4 KiB)", 0, 4096, ex);
        Attachment a = buf.attach(GPU0), b = buf.attach(GPU1);
        assertEquals(3, buf.refCnt());
        assertEquals(2, buf.attachments().size());
        assertFalse(buf.release(), "two attachments still hold it");
        a.close();
        a.close();   // idempotent
        assertEquals(0, ex.releases.get());
        assertTrue(buf.pinned());
        b.close();
        assertTrue(buf.isReleased());
        assertEquals(1, ex.releases.get());
        assertEquals(0, buf.refCnt());
        assertThrows(IllegalStateException.class, buf::retain);
        assertThrows(IllegalStateException.class, () -> buf.attach(GPU0));
    }

    @Test
    void aPinnedAttachmentHoldsTheBlocksAndNamesItself() {
        Exporter ex = new Exporter();
        DmaBuf buf = DmaBuf.export("data.bin", 0, 4096, ex);
        try (Attachment a = buf.attach(GPU0)) {
            buf.release();
            Move m = buf.moveNotify(change());
            assertFalse(a.dynamic());
            assertEquals(List.of("gpu0 (pinned attachment)"), assertInstanceOf(Move.Held.class, m).holders());
        }
        assertTrue(buf.isReleased());
        assertInstanceOf(Move.Moved.class, buf.moveNotify(change()), "a released buffer holds nothing");
    }

    @Test
    void theHoldersOwnReferencePinsToo() {
        DmaBuf buf = DmaBuf.export("data.bin", 0, 4096, new Exporter());
        assertEquals(List.of("1 pinning reference of its holder"), assertInstanceOf(Move.Held.class, buf.moveNotify(change())).holders());
        buf.release();
    }

    @Test
    void aDynamicImporterIsToldAndTheBlocksMoveOnlyAfterItLetGo() throws Exception {
        Exporter ex = new Exporter();
        DmaBuf buf = DmaBuf.export("data.bin", 0, 4096, ex);
        List<String> log = ex.log;
        Attachment dyn = buf.attachDynamic(GPU1, (a, why) -> log.add("let go: " + a.importer().name() + " " + why.cause().code()));
        List<Segment> first = dyn.map();
        assertSame(first, dyn.map(), "no move: the same answer, the exporter asked once");
        assertEquals(1, ex.maps.get());
        buf.release();   // the holder lets go: only the dynamic attachment keeps the buffer
        assertFalse(buf.pinned());
        Move m = buf.moveNotify(change());
        log.add("moved");
        assertEquals(new Move.Moved(1), m);
        assertEquals(List.of("let go: gpu1 changed", "moved"), log);
        assertEquals(new Move.Moved(0), buf.moveNotify(change()), "told once: it holds nothing until it maps again");
        assertEquals(4096 * 2, dyn.map().getFirst().end(), "after a move the exporter is asked where the bytes are now");
        assertEquals(2, ex.maps.get());
        dyn.close();
        assertEquals(1, ex.releases.get());
    }

    @Test
    void aDynamicImporterThatDoesNotLetGoHoldsTheBlocks() throws Exception {
        DmaBuf buf = DmaBuf.export("data.bin", 0, 4096, new Exporter());
        try (Attachment dyn = buf.attachDynamic(GPU1, (a, why) -> { throw new IllegalStateException("DMA stuck"); })) {
            dyn.map();
            buf.release();
            assertTrue(dyn.dynamic());
            Move.Held h = assertInstanceOf(Move.Held.class, buf.moveNotify(change()));
            assertTrue(h.holders().getFirst().contains("gpu1 did not let go"), h.toString());
        }
    }

    @Test
    void aPinWaitsWhileDynamicImportersLetGo() throws Exception {
        DmaBuf buf = DmaBuf.export("data.bin", 0, 4096, new Exporter());
        CountDownLatch inNotify = new CountDownLatch(1), letGo = new CountDownLatch(1);
        Attachment dyn = buf.attachDynamic(GPU1, (a, why) -> {
            inNotify.countDown();
            try {
                letGo.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        dyn.map();
        buf.release();
        Thread mover = Thread.ofPlatform().start(() -> buf.moveNotify(change()));
        assertTrue(inNotify.await(10, TimeUnit.SECONDS));
        List<Attachment> pinned = Collections.synchronizedList(new ArrayList<>());
        Thread pinner = Thread.ofPlatform().start(() -> pinned.add(buf.attach(GPU0)));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (pinner.getState() != Thread.State.WAITING && System.nanoTime() < deadline) Thread.onSpinWait();
        assertEquals(Thread.State.WAITING, pinner.getState(), "the pin waits for the move");
        assertTrue(pinned.isEmpty());
        letGo.countDown();
        mover.join(10_000);
        pinner.join(10_000);
        assertEquals(1, pinned.size());
        assertTrue(buf.pinned());
        pinned.getFirst().close();
        dyn.close();
        assertTrue(buf.isReleased());
    }

    @Test
    void releaseWithOnlyDynamicReferencesLeftIsRefused() {
        DmaBuf buf = DmaBuf.export("data.bin", 0, 4096, new Exporter());
        Attachment dyn = buf.attachDynamic(GPU1, (a, why) -> { });
        buf.release();
        IllegalStateException e = assertThrows(IllegalStateException.class, buf::release);
        assertTrue(e.getMessage().contains("dynamic attachments"), e.getMessage());
        dyn.close();
    }

    @Test
    void aBufferNeverReleasedIsReportedAndReleased() throws Exception {
        Exporter ex = new Exporter();
        long before = DmaBuf.leaksReported();
        makeAndForget(ex);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (ex.releases.get() == 0 && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(10);
        }
        assertEquals(1, ex.releases.get(), "the cleaner released the forgotten buffer");
        assertTrue(DmaBuf.leaksReported() > before);
    }

    private static void makeAndForget(Exporter ex) {
        DmaBuf.export("forgotten.bin", 0, 4096, ex).retain();
    }

    @Test
    void anEmptyRangeIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> DmaBuf.export("x", 4096, 4096, new Exporter()));
    }

    /** An exporter that refuses pins while refuse is set, as the file system does while a change it let through runs. */
    static final class Refusing extends Exporter {
        volatile Refusal refuse;
        final AtomicInteger asked = new AtomicInteger();

        @Override
        public Optional<Refusal> pinRefusal() {
            asked.incrementAndGet();
            return Optional.ofNullable(refuse);
        }
    }

    enum TestReason implements Reason {
        STILL_CHANGING;

        @Override public Refuser refuser() { return Refuser.EXPORTER; }
        @Override public String code() { return "still_changing"; }
        @Override public String summary() { return "a change is still running"; }
    }

    @Test
    void aPinOfABufferOnlyDynamicImportersHeldAsksTheExporterAndARefusalTakesNothing() {
        Refusing ex = new Refusing();
        DmaBuf buf = DmaBuf.export("data.bin", 0, 4096, ex);
        Attachment first = buf.attach(GPU0);
        assertEquals(0, ex.asked.get(), "a pin of a pinned buffer is not asked about");
        Attachment dyn = buf.attachDynamic(GPU1, (a, why) -> { });
        first.close();
        buf.release();
        assertFalse(buf.pinned());
        ex.refuse = new Refusal(TestReason.STILL_CHANGING, "thread 7 is still in write");
        PinRefusedException e = assertThrows(PinRefusedException.class, () -> buf.attach(GPU0));
        assertSame(TestReason.STILL_CHANGING, e.refusal().reason());
        assertTrue(e.getMessage().contains("thread 7"), e.getMessage());
        assertThrows(PinRefusedException.class, buf::retain);
        assertEquals(1, buf.refCnt(), "nothing taken: the dynamic attachment's reference only");
        assertEquals(List.of(dyn), buf.attachments());
        assertFalse(buf.pinned());
        assertEquals(0, ex.releases.get());
        ex.refuse = null;
        Attachment again = buf.attach(GPU0);
        assertTrue(buf.pinned());
        assertEquals(3, ex.asked.get());
        again.close();
        dyn.close();
        assertTrue(buf.isReleased());
        assertEquals(1, ex.releases.get());
        assertThrows(IllegalStateException.class, buf::release, "released twice: refused, not a second exporter release");
        assertEquals(1, ex.releases.get());
    }
}
