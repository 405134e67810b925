package io.directmap.fs;

/**
 * A typed extent, the iomap of this implementation: file range [start, end), what it is, and for
 * MAPPED where it is in the file system's address space. Adapters produce these from FIEMAP.
 */
public record Extent(long start, long end, Kind kind, long physical, boolean shared) {
    public enum Kind {
        MAPPED(null),
        HOLE(FsReason.HOLE),
        DELALLOC(FsReason.DELALLOC),
        UNWRITTEN(FsReason.UNWRITTEN),
        INLINE(FsReason.INLINE),
        ENCODED(FsReason.ENCODED),
        ENCRYPTED(FsReason.ENCRYPTED),
        UNKNOWN(FsReason.UNKNOWN_LOCATION);

        private final FsReason refusal;

        Kind(FsReason refusal) { this.refusal = refusal; }

        /** Why this kind cannot be mapped; null for MAPPED. */
        public FsReason refusal() { return refusal; }
    }
}
