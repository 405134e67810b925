package io.directmap.mm;

import io.directmap.sys.Units;
import java.util.Locale;

/**
 * The proposal's invalidation: the exporter (the filesystem, a driver) takes device mappings of
 * [start, end) of a file back, and tells the vma's {@link MappingOwner}. heldBack says whether the
 * change waited for the devices (a lease break holds the writer's open until they let go) or was
 * found after the fact (the read_retry check saw the extent map move, a block device changed).
 *
 * @param start the first file offset taken back
 * @param end the file offset after the last one ({@link Long#MAX_VALUE}: to the end of the file)
 * @param cause what changed
 * @param detail what changed, for a person
 * @param heldBack true when the change waited for the devices to let go; false when it was seen after
 * @param raisedNanos when it was raised ({@link System#nanoTime()})
 */
public record Invalidation(long start, long end, Cause cause, String detail, boolean heldBack, long raisedNanos) {
    /** What changed. */
    public enum Cause {
        /** Another process opened the file for writing, or truncated it: a read lease broke. */
        WRITE_OPEN("another process opened it for writing or truncated it"),
        /** Another process is writing the range (write, pwrite, an O_DIRECT write, copy_file_range): heard with its range. */
        WRITE("another process is writing the range"),
        /** Another process is truncating the file (truncate, ftruncate, an open with O_TRUNC): what lies past the new size. */
        TRUNCATE("another process is truncating the file"),
        /** Another process is allocating, zeroing or punching out the range (fallocate). */
        FALLOCATE("another process is allocating, zeroing or punching the range"),
        /**
         * Another process changes the range in a way not told apart (a shared writable mmap, an
         * io_uring request, a page fault): taken as a write of the range.
         */
        UNSEEN_WRITE("another process may change the range in a way the kernel does not describe"),
        /** The file's blocks moved (defragment, balance, dedupe): the extent map changed under a mapping. */
        EXTENT_MOVED("its blocks moved"),
        /** The block device below changed on its own (shrank, detaching, gone). */
        BLOCK_DEVICE("the block device changed"),
        /** The vma was unmapped (munmap): its subscribers let go of everything. */
        UNMAPPED("the mapping was unmapped"),
        /** The exporter of device memory (a device file's driver) frees or moves the memory it mapped out. */
        RECLAIMED("the exporter freed or moved the memory"),
        /** A change announced through the API (the filesystem's invalidate). */
        CHANGED("the file changed");

        private final String summary;

        Cause(String summary) { this.summary = summary; }

        /** {@return what changed, for a person} */
        public String summary() { return summary; }

        /** {@return the name in JSON and events: the constant in lower case} */
        public String code() { return name().toLowerCase(Locale.ROOT); }
    }

    /** {@return whether another process changed the file and waited for the devices (a lease break or a range event)} */
    public boolean heldBackChange() {
        return heldBack && switch (cause) {
            case WRITE_OPEN, WRITE, TRUNCATE, FALLOCATE, UNSEEN_WRITE -> true;
            default -> false;
        };
    }

    /**
     * An invalidation raised now.
     *
     * @param start the first file offset taken back
     * @param end the file offset after the last one
     * @param cause what changed
     * @param detail what changed, for a person
     * @param heldBack whether the change waits for the devices to let go
     * @return the invalidation, stamped with {@link System#nanoTime()}
     */
    public static Invalidation of(long start, long end, Cause cause, String detail, boolean heldBack) {
        return new Invalidation(start, end, cause, detail, heldBack, System.nanoTime());
    }

    /**
     * {@return whether it takes back any byte of [s, e)}
     *
     * @param s the first file offset
     * @param e the file offset after the last one
     */
    public boolean overlaps(long s, long e) {
        return start < e && s < end;
    }

    @Override
    public String toString() {
        return cause.code() + " " + (end == Long.MAX_VALUE ? "[" + start + ", EOF)" : Units.range(start, end)) + ": " + detail;
    }
}
