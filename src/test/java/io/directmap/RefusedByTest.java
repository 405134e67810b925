package io.directmap;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.directmap.mm.Refuser;
import java.util.Arrays;
import java.util.EnumSet;
import org.junit.jupiter.api.Test;

/**
 * The facade's RefusedBy and the contract's Refuser correspond one to one, by name and label: a
 * refuser added to mm without its RefusedBy fails here, not as an IllegalArgumentException in a
 * user's read.
 */
class RefusedByTest {
    @Test
    void everyRefuserHasExactlyOneRefusedByOfTheSameNameAndLabel() {
        EnumSet<RefusedBy> seen = EnumSet.noneOf(RefusedBy.class);
        for (Refuser r : Refuser.values()) {
            RefusedBy b = RefusedBy.of(r);
            assertEquals(r, b.refuser(), b + " stands for " + r);
            assertEquals(r.name(), b.name(), "Internals maps them by name");
            assertEquals(RefusedBy.valueOf(r.name()), b);
            assertEquals(r.label(), b.label(), "dmap's tables and JSON print one label for both");
            seen.add(b);
        }
        assertEquals(EnumSet.allOf(RefusedBy.class), seen, "every RefusedBy stands for a Refuser");
        assertEquals(Refuser.values().length, RefusedBy.values().length,
                Arrays.toString(RefusedBy.values()) + " vs " + Arrays.toString(Refuser.values()));
    }
}
