package io.directmap.fault;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class FaultsTest {
    @Test
    void aPointFiresOnlyWhileOnAndOnlyAsOftenAsAllowed() {
        assertFalse(Faults.fire(FaultPoint.READ_EIO));
        try (var f = Faults.enable(FaultPoint.READ_EIO, 1.0, 2)) {
            assertTrue(Faults.fire(FaultPoint.READ_EIO));
            assertTrue(Faults.fire(FaultPoint.READ_EIO));
            assertFalse(Faults.fire(FaultPoint.READ_EIO));
            assertFalse(Faults.fire(FaultPoint.READ_SHORT));
            assertEquals(2, f.fired());
        }
        assertFalse(Faults.fire(FaultPoint.READ_EIO));
    }

    @Test
    void aProbabilityFiresAboutThatShare() {
        try (var f = Faults.enable(FaultPoint.READ_SHORT, 0.25, Long.MAX_VALUE)) {
            int n = 0;
            for (int i = 0; i < 20_000; i++) if (Faults.fire(FaultPoint.READ_SHORT)) n++;
            assertTrue(n > 4_000 && n < 6_000, n + " of 20000 at 0.25");
            assertEquals(n, f.fired());
        }
    }

    @Test
    void theEnvironmentSyntaxIsParsedAndBadEntriesAreNamed() {
        var s = Faults.parse("read_eio:0.5, lease_thread_die:1:1,skip_invalidate");
        assertEquals(new Faults.Setting(FaultPoint.READ_EIO, 0.5, Long.MAX_VALUE), s.get(0));
        assertEquals(new Faults.Setting(FaultPoint.LEASE_THREAD_DIE, 1, 1), s.get(1));
        assertEquals(new Faults.Setting(FaultPoint.SKIP_INVALIDATE, 1, Long.MAX_VALUE), s.get(2));
        var e = assertThrows(IllegalArgumentException.class, () -> Faults.parse("read_eoi"));
        assertTrue(e.getMessage().contains("'read_eoi'") && e.getMessage().contains("read_eio"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Faults.parse("read_eio:2"));
        assertTrue(e.getMessage().contains("between 0 and 1"), e.getMessage());
    }
}
