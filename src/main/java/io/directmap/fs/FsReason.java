package io.directmap.fs;

import io.directmap.mm.Reason;
import io.directmap.mm.Refuser;
import io.directmap.mm.Transfer;
import java.util.Locale;
import java.util.Optional;

/**
 * The file system's refusals, one per check, like fs/iomap/swapfile.c. ALL_OR_NOTHING is the
 * importer's own: it asked for the whole range or nothing, and some other part was refused.
 */
public enum FsReason implements Reason {
    PAGE_CACHED("pages are in the page cache (policy: use the cache)"),
    PAGE_DIRTY("pages are dirty or under writeback: the blocks on disk are stale"),
    CACHE_STATE_UNKNOWN("the page-cache state cannot be read, so the blocks may be stale"),
    DELALLOC("delayed allocation: the data has no blocks yet"),
    UNWRITTEN("unwritten (preallocated) extent: the file reads zeros, the blocks hold garbage"),
    HOLE("hole: no blocks, the file reads zeros"),
    INLINE("inline data: stored in the inode or metadata, not in data blocks"),
    ENCODED("encoded extent (compressed): the blocks do not hold the bytes as read"),
    ENCRYPTED("encrypted data: the blocks hold ciphertext"),
    UNKNOWN_LOCATION("the file system does not say where this extent is"),
    SHARED_FOR_WRITE("shared (reflinked) extent: writing it would change another file"),
    JOURNALED_DATA("data journaling: the current bytes may be in the journal"),
    VERITY("fs-verity file: reading blocks directly would skip verification"),
    REALTIME_DEVICE("xfs realtime file: its blocks are on the realtime device"),
    MULTI_DEVICE("btrfs over several devices: not mapped to one device range"),
    STRIPED("striped btrfs profile (RAID0/10/5/6): not one contiguous device range"),
    CHUNK_MAP_UNREADABLE("the btrfs chunk tree cannot be read to find the device offset"),
    NO_BLOCK_MAPPING("this file system has no block device behind its files"),
    NO_BLOCK_DEVICE("the file system's block device cannot be found"),
    NO_FIEMAP("the file system does not report extents (FIEMAP)"),
    STACKING_TOO_DEEP("too many loop devices stacked"),
    CACHE_FASTER("the page cache delivers this range faster than the block device here (the learning policy measured both)"),
    OPEN_FOR_WRITE("another process has the file open for writing: no lease can hold its writes back, so the blocks may be stale"),
    NO_LEASE("the file system cannot hold writers back (no read lease: not the owner and no CAP_LEASE, or unsupported)"),
    PIN_NOT_SUPPORTED("a pinned mapping is a dma_buf with a lifetime of its own, which a vma's windows cannot hold: pin with dmap pin (FsLayer.pin)"),
    PIN_RELOCATABLE("btrfs moves blocks on its own (balance, scrub repair) without opening the file, so a pin cannot hold them"),
    PIN_UNWATCHED("no change watch (fanotify pre-content events) to refuse writers with, so a pin cannot hold the blocks"),
    PIN_CHANGING("a change let through while only dynamic importers held the buffer is still running: a pin now could hold the old placement"),
    PIN_SHARED_WRITER("a shared writable mapping of the file, made while only dynamic importers held the buffer, stores into it without asking"),
    PIN_NOT_DIRECT("a pin holds only blocks the device reads directly, and part of the range is not direct"),
    CACHED_FOR_WRITE("pages are in the page cache: blocks written under them would leave the cache holding the old bytes"),
    PAST_EOF("past the end of the file: a device writes whole blocks, and only the file system may extend a file"),
    CHECKSUMMED("the file system checksums (and may compress or copy) the data: blocks written behind its back would fail their checksum"),
    LOOP_BACKING_FILE("a loop device's backing file is not written behind its file system: no lease holds its other users back, so the loop device itself is written"),
    OPENED_READ_ONLY("the file was mapped for reading: no write lease holds other readers back, and its refused ranges could not be written"),
    OPEN_ELSEWHERE("the file is open elsewhere (for reading or writing), or another lease is held on it: no write lease can be taken"),
    BEING_CHANGED("another process is changing this range (a write, truncate or fallocate let go after the devices let go), and has not closed the file yet"),
    ALL_OR_NOTHING(Refuser.IMPORTER, "the importer asked for all or nothing, and part of the range was refused");

    private final Refuser refuser;
    private final String summary;

    FsReason(String summary) { this(Refuser.FILESYSTEM, summary); }

    FsReason(Refuser refuser, String summary) {
        this.refuser = refuser;
        this.summary = summary;
    }

    @Override public Refuser refuser() { return refuser; }
    @Override public String code() { return name().toLowerCase(Locale.ROOT); }
    @Override public String summary() { return summary; }

    /** A range refused because it is in the page cache is copied from there; one the learner sends through the cache fills it. */
    @Override
    public Optional<Transfer> transfer() {
        return switch (this) {
            case PAGE_CACHED -> HOT;
            case CACHE_FASTER -> COLD;
            default -> Optional.empty();
        };
    }

    private static final Optional<Transfer> HOT = Optional.of(Transfer.CACHE_HOT), COLD = Optional.of(Transfer.CACHE_COLD);
}
