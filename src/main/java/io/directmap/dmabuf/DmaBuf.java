package io.directmap.dmabuf;

import io.directmap.lang.Monitors;
import io.directmap.mm.Invalidation;
import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import io.directmap.pci.Topology.Endpoint;
import java.io.IOException;
import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A device mapping whose lifetime is its own (struct dma_buf): what device_map with
 * DEVICE_MAP_FLAG_PIN gave, held until the last reference goes, whatever happens to the vma and the
 * descriptor it was made through. Reference counted as Netty's {@code ReferenceCounted}: the
 * exporter makes it with one reference, its holder's; {@link #retain} adds one, {@link #release}
 * drops one, and the last release has the exporter let go ({@link DmaBufOps#release}).
 *
 * <p>Importers attach to it. A pinned attachment ({@link #attach}, dma_buf_pin) holds a reference
 * that keeps the blocks in place; so does every reference taken with {@link #retain} or made with
 * the buffer. A dynamic attachment ({@link #attachDynamic}) holds a reference that does not: when
 * the exporter must move the blocks and nothing else holds them, it is told first
 * ({@link MoveNotify}) and the blocks move only after it let go ({@link #moveNotify}).
 *
 * <p>Leaks: a buffer that becomes unreachable with references left is reported (a warning on the
 * "io.directmap" logger that names it, counted by {@link #leaksReported}) and then released, so a
 * forgotten buffer does not hold its file's blocks for the life of the process. Set
 * {@code -Ddirectmap.dmabuf.leakTrace=true} to have the report say where it was made.
 *
 * <pre>
 *   exporter (fs)                    DmaBuf                       importers
 *   pin: export(ops)  ------------>  refs 1 (holder)
 *                                    attach(gpu0)    <----------  pinned: refs 2
 *                                    attachDynamic(gpu1, n) <---  dynamic: refs 3
 *   a writer wants the range: moveNotify(why)
 *                     <------------  Held [gpu0, holder]          (writer refused, ETXTBSY)
 *   ... gpu0 detaches, the holder releases: refs 1 (gpu1, dynamic)
 *   moveNotify(why)   ------------>  n.moveNotify(gpu1) ------->  gpu1 stops DMA, lets go
 *                     <------------  Moved(1)                     (writer goes on)
 *   gpu1 maps again: ops.map() ---->  the new segments
 * </pre>
 *
 * Thread-safe.
 */
public final class DmaBuf {
    private static final AtomicLong IDS = new AtomicLong();
    private static final AtomicLong LEAKS = new AtomicLong();
    private static final Cleaner CLEANER = Cleaner.create(r -> Thread.ofPlatform().daemon().name("dmap-dmabuf-leaks").unstarted(r));
    private static final boolean LEAK_TRACE = Boolean.getBoolean("directmap.dmabuf.leakTrace");
    private static final System.Logger LOG = System.getLogger("io.directmap");

    private final State state;
    private final List<Attachment> attachments = new ArrayList<>();   // guarded by state
    private List<Segment> mapped;                                     // guarded by state: what ops.map() said for mappedAt
    private long mappedAt = -1;                                       // guarded by state: the generation mapped was made at

    /**
     * What the leak cleaner needs, and the counts; the buffer's lock. It never refers to the buffer
     * or its attachments, or the buffer could never become unreachable.
     */
    private static final class State implements Runnable {
        final long id;
        final String description;
        final DmaBufOps ops;
        final Throwable createdAt;
        int refs = 1;
        int dynamic;           // references held by dynamic attachments (they do not pin)
        int moving;            // moves in progress: dynamic importers are letting go
        long generation;       // bumped by every move: what was mapped before is wrong
        boolean released;
        String revoked;        // why the exporter could not keep the blocks, or null

        State(long id, String description, DmaBufOps ops, Throwable createdAt) {
            this.id = id;
            this.description = description;
            this.ops = ops;
            this.createdAt = createdAt;
        }

        /** The cleaner's action: the buffer is unreachable. */
        @Override
        public void run() {
            boolean leaked;
            synchronized (this) {
                leaked = !released && refs > 0;
                released = true;
            }
            if (!leaked) return;
            LEAKS.incrementAndGet();
            LOG.log(System.Logger.Level.WARNING, "LEAK: dma_buf " + id + " (" + description + ") became unreachable with "
                    + refs + " reference(s) never released; it is released now. Release every DmaBuf and close every Attachment"
                    + (createdAt == null ? " (run with -Ddirectmap.dmabuf.leakTrace=true to see where it was made)" : ""), createdAt);
            release(ops, description);
        }
    }

    private final Cleaner.Cleanable cleanable;
    private final long start, end;

    private DmaBuf(String description, long start, long end, DmaBufOps ops) {
        this.start = start;
        this.end = end;
        this.state = new State(IDS.incrementAndGet(), description, ops,
                LEAK_TRACE ? new Throwable("dma_buf made here") : null);
        this.cleanable = CLEANER.register(this, state);
    }

    /**
     * A buffer over [start, end) of a file, with one reference (the caller's, which pins).
     *
     * @param description for messages and listings: the file, the range, for whom
     * @param start the first file offset the buffer holds
     * @param end the file offset after the last one
     * @param ops what the exporter does for it
     * @return the buffer
     * @throws IllegalArgumentException for an empty or negative range
     */
    public static DmaBuf export(String description, long start, long end, DmaBufOps ops) {
        Objects.requireNonNull(ops, "ops");
        if (start < 0 || end <= start) throw new IllegalArgumentException(description + ": a dma_buf of [" + start + ", " + end
                + ") holds nothing; give start < end");
        return new DmaBuf(Objects.requireNonNull(description, "description"), start, end, ops);
    }

    /** {@return a number for messages, unique in this process} */
    public long id() { return state.id; }

    /** {@return what it holds, for messages: the file, the range, for whom} */
    public String description() { return state.description; }

    /** {@return the first file offset it holds} */
    public long start() { return start; }

    /** {@return the file offset after the last one it holds} */
    public long end() { return end; }

    /** {@return how many references it has (pinning and dynamic); 0 once released} */
    public int refCnt() {
        synchronized (state) {
            return state.released ? 0 : state.refs;
        }
    }

    /** {@return whether something keeps its blocks in place: a pinning reference or a pinned attachment} */
    public boolean pinned() {
        synchronized (state) {
            return !state.released && state.refs - state.dynamic > 0;
        }
    }

    /** {@return whether the last reference went (the exporter let go)} */
    public boolean isReleased() {
        synchronized (state) {
            return state.released;
        }
    }

    /**
     * Adds a pinning reference (Netty's retain).
     *
     * @return this buffer
     * @throws IllegalStateException when it was released already
     * @throws PinRefusedException when only dynamic importers held it and the exporter cannot let
     *         it be pinned now (nothing was taken)
     */
    public DmaBuf retain() {
        boolean repin;
        synchronized (state) {
            if (state.released) throw released("retain");
            repin = state.refs - state.dynamic == 0;
            state.refs++;
        }
        if (repin) {
            Optional<Refusal> no = askToPin();
            if (no.isPresent()) {
                drop(false);
                throw new PinRefusedException(toString(), no.get());
            }
        }
        return this;
    }

    /** The exporter's answer to a pin of a buffer only dynamic importers held; a throw counts as a refusal. */
    private Optional<Refusal> askToPin() {
        try {
            return state.ops.pinRefusal();
        } catch (RuntimeException e) {
            drop(false);
            throw e;
        }
    }

    /**
     * Drops a pinning reference; the last one has the exporter let go.
     *
     * @return true when this was the last reference
     * @throws IllegalStateException when it was released already, or every reference left is a
     *         dynamic attachment's (close the attachment instead)
     */
    public boolean release() {
        synchronized (state) {
            if (state.released) throw released("release");
            if (state.refs - state.dynamic <= 0) {
                throw new IllegalStateException("dma_buf " + state.id + " (" + state.description + "): release without a pinning "
                        + "reference; its " + state.dynamic + " reference(s) are dynamic attachments': close them");
            }
        }
        return drop(false);
    }

    /**
     * Attaches a pinned importer (dma_buf_attach and dma_buf_pin): the blocks stay in place until
     * the attachment is closed. Waits while a move is letting dynamic importers go.
     *
     * @param importer the device that reads through the buffer
     * @return the attachment; closing it drops its reference
     * @throws IllegalStateException when the buffer was released
     * @throws PinRefusedException when only dynamic importers held the buffer and the exporter
     *         cannot let it be pinned now: a change it let through is still running, or a shared
     *         writable mapping could change the bytes (nothing was taken)
     */
    public Attachment attach(Endpoint importer) {
        return attach(importer, null);
    }

    /**
     * Attaches a dynamic importer (dma_buf_dynamic_attach): it holds a reference that keeps the
     * buffer, not its blocks; before the exporter moves them, notify is called and must return only
     * once the importer let go.
     *
     * @param importer the device that reads through the buffer
     * @param notify its move_notify callback
     * @return the attachment; closing it drops its reference
     * @throws IllegalStateException when the buffer was released
     */
    public Attachment attachDynamic(Endpoint importer, MoveNotify notify) {
        return attach(importer, Objects.requireNonNull(notify, "notify"));
    }

    private Attachment attach(Endpoint importer, MoveNotify notify) {
        Objects.requireNonNull(importer, "importer");
        Attachment a;
        boolean repin;
        synchronized (state) {
            // A pin taken while dynamic importers are letting go would hold blocks that are about to move.
            if (notify == null) Monitors.awaitUninterruptibly(state, () -> state.moving == 0);
            if (state.released) throw released("attach");
            a = new Attachment(this, importer, notify);
            repin = notify == null && state.refs - state.dynamic == 0;
            state.refs++;
            if (notify != null) state.dynamic++;
            attachments.add(a);
        }
        if (repin) {
            // Taken first, so no further change is let through; then the exporter says whether
            // what it let through while nothing pinned is done (a change still running, a shared
            // writable mapping) and the bytes can be held.
            Optional<Refusal> no;
            try {
                no = state.ops.pinRefusal();
            } catch (RuntimeException e) {
                a.close();
                throw e;
            }
            if (no.isPresent()) {
                a.close();
                throw new PinRefusedException(toString(), no.get());
            }
        }
        return a;
    }

    /** {@return the attachments now, in the order they were made} */
    public List<Attachment> attachments() {
        synchronized (state) {
            return List.copyOf(attachments);
        }
    }

    /**
     * For the exporter: it must move the blocks (a write, a hole punch, a defragmenter). When a
     * pinning reference or a pinned attachment holds them, nothing is told and the answer is
     * {@link Move.Held} (the exporter refuses the change). Otherwise every dynamic attachment that
     * holds what it mapped is told, one after another, and this returns {@link Move.Moved} once all let go; one that throws
     * has not let go, and the answer is Held with it named. Blocks while importers let go.
     *
     * @param why what is about to change
     * @return whether the blocks may move now
     */
    public Move moveNotify(Invalidation why) {
        List<Attachment> tell;
        synchronized (state) {
            if (state.released) return new Move.Moved(0);
            if (state.refs - state.dynamic > 0) return new Move.Held(holders());
            state.moving++;
            tell = new ArrayList<>();
            for (Attachment a : attachments) if (a.dynamic() && a.holdsMapping()) tell.add(a);
        }
        List<String> failed = new ArrayList<>();
        try {
            for (Attachment a : tell) {
                try {
                    a.notifier().moveNotify(a, why);
                    a.holdsMapping(false);
                } catch (RuntimeException | Error e) {
                    failed.add(a.importer().name() + " did not let go: " + e);
                    LOG.log(System.Logger.Level.WARNING, "move_notify of dma_buf " + state.id + " to " + a.importer().name()
                            + " threw; the blocks stay", e);
                }
            }
        } finally {
            synchronized (state) {
                state.moving--;
                if (failed.isEmpty()) state.generation++;
                state.notifyAll();
            }
        }
        return failed.isEmpty() ? new Move.Moved(tell.size()) : new Move.Held(failed);
    }

    /**
     * For the exporter: the blocks went away whatever anyone holds (the block device was detached).
     * Dynamic attachments are told; every later {@link Attachment#map} fails with why.
     *
     * @param why what happened
     */
    public void revoke(Invalidation why) {
        List<Attachment> tell = new ArrayList<>();
        synchronized (state) {
            if (state.released || state.revoked != null) return;
            state.revoked = why.toString();
            for (Attachment a : attachments) if (a.dynamic()) tell.add(a);
        }
        for (Attachment a : tell) {
            try {
                a.notifier().moveNotify(a, why);
            } catch (RuntimeException | Error e) {
                LOG.log(System.Logger.Level.WARNING, "move_notify of revoked dma_buf " + state.id + " to " + a.importer().name() + " threw", e);
            }
        }
    }

    /** Who holds the blocks, for {@link Move.Held}; called holding state. */
    private List<String> holders() {
        List<String> out = new ArrayList<>();
        int attached = 0;
        for (Attachment a : attachments) {
            if (a.dynamic()) continue;
            out.add(a.importer().name() + " (pinned attachment)");
            attached++;
        }
        int bare = state.refs - state.dynamic - attached;
        if (bare > 0) out.add(bare + " pinning reference" + (bare == 1 ? "" : "s") + " of its holder");
        return out;
    }

    /** The segments for an attachment's map: the exporter's answer, asked again after every move. */
    List<Segment> map(Attachment a) throws IOException {
        while (true) {
            long gen;
            synchronized (state) {
                Monitors.awaitUninterruptibly(state, () -> state.moving == 0);
                if (state.released) throw released("map");
                if (state.revoked != null) {
                    throw new IOException("dma_buf " + state.id + " (" + state.description + ") was revoked: " + state.revoked
                            + "; the bytes are gone from where it held them, release it and pin again");
                }
                if (mappedAt == state.generation) return mapped;
                gen = state.generation;
            }
            List<Segment> s = List.copyOf(state.ops.map());
            synchronized (state) {
                if (gen == state.generation && !state.released) {
                    mapped = s;
                    mappedAt = gen;
                    return s;
                }
            }
        }
    }

    /** An attachment was closed: its reference goes. */
    void detach(Attachment a) {
        synchronized (state) {
            if (!attachments.remove(a)) return;
            if (a.dynamic()) state.dynamic--;
        }
        drop(true);
    }

    /** Drops one reference (already taken off the attachment counts); the last one releases. */
    private boolean drop(boolean attachment) {
        synchronized (state) {
            if (state.released) return false;
            if (--state.refs > 0) return false;
            state.released = true;
        }
        cleanable.clean();   // the state is released already: the cleaner does nothing more
        release(state.ops, state.description);
        return true;
    }

    private static void release(DmaBufOps ops, String description) {
        try {
            ops.release();
        } catch (RuntimeException | Error e) {
            LOG.log(System.Logger.Level.ERROR, "the exporter of dma_buf (" + description + ") failed to let go", e);
            throw e;
        }
    }

    private IllegalStateException released(String call) {
        return new IllegalStateException("dma_buf " + state.id + " (" + state.description + ") was released; " + call
                + " needs a live buffer: keep a reference (retain) for as long as it is used");
    }

    /** {@return how many buffers this process found unreachable with references left (each was then released)} */
    public static long leaksReported() { return LEAKS.get(); }

    @Override
    public String toString() {
        return "dma_buf " + state.id + " (" + state.description + ", " + refCnt() + " refs)";
    }
}
