package io.directmap.tools.torture;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.directmap.sys.Fiemap;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A relocation is counted only where the same bytes are placed, before and after, at another device offset. */
class PlacementTest {
    static final long K = 4096;

    static Placement of(Fiemap.Extent... xs) {
        return new Placement(List.of(xs));
    }

    static Fiemap.Extent x(long logical, long physical, long length) {
        return new Fiemap.Extent(logical * K, physical * K, length * K, 0);
    }

    @Test
    void theSameMapMovedNothing() {
        Placement p = of(x(0, 100, 8), x(8, 500, 8));
        assertEquals(0, p.movedBytesSince(p));
    }

    @Test
    void extentsSplitOrJoinedDifferentlyButInTheSamePlaceMovedNothing() {
        assertEquals(0, of(x(0, 100, 16)).movedBytesSince(of(x(0, 100, 4), x(4, 104, 12))));
    }

    @Test
    void onlyTheRangeNowElsewhereCounts() {
        // blocks 4..8 went from 104.. to 900..; the rest stayed
        assertEquals(4 * K, of(x(0, 100, 4), x(4, 900, 4), x(8, 108, 8)).movedBytesSince(of(x(0, 100, 16))));
    }

    @Test
    void aHoleFilledOrPunchedIsNoRelocation() {
        assertEquals(0, of(x(0, 100, 4), x(4, 700, 4)).movedBytesSince(of(x(0, 100, 4))));
        assertEquals(0, of(x(0, 100, 4)).movedBytesSince(of(x(0, 100, 4), x(4, 700, 4))));
    }

    @Test
    void aDefragmentedFileMovedEveryBlockThatWasPlacedElsewhere() {
        assertEquals(12 * K, of(x(0, 2000, 16)).movedBytesSince(of(x(0, 100, 4), x(4, 300, 4), x(8, 500, 4), x(12, 2012, 4))));
    }
}
