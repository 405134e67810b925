package io.directmap.tools.torture;

import io.directmap.sys.Fiemap;
import io.directmap.sys.FileHandle;
import io.directmap.sys.SysException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Where a file's bytes lie on its device (FIEMAP), to tell whether a change relocated them. Only
 * allocated extents count: a delayed-allocation or unknown extent has no place yet. Taken with
 * FIEMAP_FLAG_SYNC, so that writes in flight (a defragmenter's copies, btrfs's delayed COW) have
 * landed where they are going; the torture evicts and syncs anyway, so this changes nothing it tests.
 */
record Placement(List<Fiemap.Extent> extents) {
    private static final int UNPLACED = Fiemap.FIEMAP_EXTENT_DELALLOC | Fiemap.FIEMAP_EXTENT_UNKNOWN;

    static Placement of(Path file, long length) throws SysException {
        try (FileHandle h = FileHandle.openRead(file)) {
            List<Fiemap.Extent> placed = new ArrayList<>();
            for (Fiemap.Extent e : Fiemap.extents(h, 0, length, Fiemap.FIEMAP_FLAG_SYNC)) {
                if ((e.flags() & UNPLACED) == 0) placed.add(e);
            }
            return new Placement(List.copyOf(placed));
        }
    }

    /** Bytes placed in both maps but at another device offset now: what was relocated (0 when nothing moved). */
    long movedBytesSince(Placement before) {
        long moved = 0;
        int j = 0;
        for (Fiemap.Extent was : before.extents) {
            while (j < extents.size() && extents.get(j).logicalEnd() <= was.logical()) j++;
            for (int k = j; k < extents.size() && extents.get(k).logical() < was.logicalEnd(); k++) {
                Fiemap.Extent now = extents.get(k);
                long s = Math.max(was.logical(), now.logical()), e = Math.min(was.logicalEnd(), now.logicalEnd());
                if (s < e && was.physical() - was.logical() != now.physical() - now.logical()) moved += e - s;
            }
        }
        return moved;
    }
}
