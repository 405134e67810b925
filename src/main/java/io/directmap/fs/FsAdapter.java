package io.directmap.fs;

import static io.directmap.sys.Fiemap.*;

import io.directmap.block.BlockLayer;
import io.directmap.mm.Refusal;
import io.directmap.sys.Fiemap;
import io.directmap.sys.SysException;
import java.util.Optional;

/**
 * What one file system type supplies to the generic implementation ({@link FsLayer}), in the
 * manner of iomap_begin: refusals that hold for a whole file, the conversion of its native extent
 * map to typed {@link Extent}s, and where its physical addresses lie. Everything else is shared.
 */
public interface FsAdapter {
    /** "ext4", "xfs", "btrfs", or the name of a file system without block mapping. */
    String name();

    /** A refusal that holds for every byte of the file (inode flags, mount options), or empty. */
    Optional<Refusal> fileRefusal(OpenFile file) throws SysException;

    /**
     * A refusal of direct WRITE that holds for every byte of the file, beyond {@link #fileRefusal}
     * (a file system that checksums or compresses its data in place), or empty.
     */
    default Optional<Refusal> writeRefusal(OpenFile file) throws SysException { return Optional.empty(); }

    /** The one converter from a FIEMAP extent to a typed extent; adapters override for quirks. */
    default Extent convert(Fiemap.Extent e) {
        Extent.Kind kind;
        if (e.has(FIEMAP_EXTENT_DELALLOC)) kind = Extent.Kind.DELALLOC;
        else if (e.has(FIEMAP_EXTENT_UNKNOWN)) kind = Extent.Kind.UNKNOWN;
        else if (e.has(FIEMAP_EXTENT_DATA_INLINE) || e.has(FIEMAP_EXTENT_DATA_TAIL) || e.has(FIEMAP_EXTENT_NOT_ALIGNED))
            kind = Extent.Kind.INLINE;
        else if (e.has(FIEMAP_EXTENT_DATA_ENCRYPTED)) kind = Extent.Kind.ENCRYPTED;
        else if (e.has(FIEMAP_EXTENT_ENCODED)) kind = Extent.Kind.ENCODED;
        else if (e.has(FIEMAP_EXTENT_UNWRITTEN)) kind = Extent.Kind.UNWRITTEN;
        else kind = Extent.Kind.MAPPED;
        return new Extent(e.logical(), e.logicalEnd(), kind, e.physical(), e.has(FIEMAP_EXTENT_SHARED));
    }

    /** The locator for this file's physical addresses, made once per device_map call. */
    Location.Locator locator(OpenFile file, BlockLayer blocks);
}
