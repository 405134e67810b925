package io.directmap.fault;

/**
 * The named places where a failure can be injected, in the manner of Linux's fault-injection
 * framework (failslab, fail_make_request): each one makes a real call fail the way the system
 * can make it fail, so a test shows what that failure leaves behind.
 *
 * <p>The name is what {@code DMAP_FAULTS} takes; the description is what the README lists.
 */
public enum FaultPoint {
    IO_URING_SUBMIT_EAGAIN("io_uring_submit_eagain", "io_uring_enter fails with EAGAIN (the kernel could not take the requests now)"),
    READ_SHORT("read_short", "a direct read of the block device returns fewer bytes than asked (as at the device's end)"),
    READ_EIO("read_eio", "a direct read of the block device fails with EIO (a bad sector, a pulled cable)"),
    WRITE_EIO("write_eio", "a direct write of the block device fails with EIO before it starts (a bad sector, a pulled cable): the blocks it would have written keep their old bytes"),
    LEASE_THREAD_DIE("lease_thread_die", "the thread that answers lease breaks dies with an Error before handling a break"),
    INVALIDATE_THROWS("invalidate_throws", "an importer's invalidate callback throws instead of acknowledging"),
    DEVICE_ALLOC_FAIL("device_alloc_fail", "allocating device memory fails (the device is out of memory)"),
    MUNMAP_ERROR("munmap_error", "an error while a vma is unmapped (a notifier or a release throws)"),
    PIN_PLAN_ERROR("pin_plan_error", "planning a pin's range fails after its inode is marked (as FIEMAP failing with EIO)"),
    SKIP_INVALIDATE("skip_invalidate", "the filesystem skips invalidating mappings: the coherence checker must then report stale blocks"),
    SKIP_RANGE_INVALIDATE("skip_range_invalidate", "a change heard with its range (fanotify) goes on without its mappings taken back (and the re-check of moved blocks is skipped): the coherence checker must then report stale blocks"),
    FANOTIFY_INIT("fanotify_init", "fanotify_init fails with EMFILE (too many fanotify groups): changes cannot be watched"),
    FANOTIFY_MARK("fanotify_mark", "fanotify_mark fails with ENOSPC (too many marks) when a file is to be watched"),
    FANOTIFY_READ("fanotify_read", "reading the fanotify group fails with EIO (events cannot be received)"),
    FANOTIFY_RESPONSE("fanotify_response", "answering a fanotify permission event fails with EIO (the task stays blocked)");

    private final String name;
    private final String description;

    FaultPoint(String name, String description) {
        this.name = name;
        this.description = description;
    }

    /** The name DMAP_FAULTS uses, for example {@code read_eio}. */
    public String pointName() { return name; }

    /** What the failure is, in a sentence. */
    public String description() { return description; }

    /** The point of that name, or an exception that lists the names there are. */
    public static FaultPoint named(String name) {
        for (FaultPoint p : values()) if (p.name.equals(name)) return p;
        StringBuilder known = new StringBuilder();
        for (FaultPoint p : values()) known.append(known.isEmpty() ? "" : ", ").append(p.name);
        throw new IllegalArgumentException("unknown fault point '" + name + "'; the points are: " + known);
    }
}
