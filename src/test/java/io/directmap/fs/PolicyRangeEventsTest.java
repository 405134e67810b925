package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.pci.Topology;
import org.junit.jupiter.api.Test;

/**
 * The switch for range events: the system property tests set, and the policy's own flag. With it
 * off, a stack says a lease holds changes back, before anything is mapped. Needs no root.
 */
class PolicyRangeEventsTest {
    /** Runs body with the property set to value (or cleared for null), then puts back what was there. */
    private static void withProperty(String value, Runnable body) {
        String was = System.getProperty(Policy.RANGE_EVENTS_PROPERTY);
        try {
            if (value == null) System.clearProperty(Policy.RANGE_EVENTS_PROPERTY);
            else System.setProperty(Policy.RANGE_EVENTS_PROPERTY, value);
            body.run();
        } finally {
            if (was == null) System.clearProperty(Policy.RANGE_EVENTS_PROPERTY);
            else System.setProperty(Policy.RANGE_EVENTS_PROPERTY, was);
        }
    }

    @Test
    void thePropertySwitchesRangeEventsOffForEveryNewPolicy() {
        for (String off : new String[] {"false", "off", "OFF", "0", "no"}) {
            withProperty(off, () -> {
                assertFalse(Policy.rangeEventsByDefault(), off);
                assertFalse(Policy.defaults().rangeEvents(), off);
                assertFalse(Policy.learning().rangeEvents(), off);
            });
        }
        withProperty("true", () -> assertTrue(Policy.defaults().rangeEvents()));
        if (System.getenv(Policy.RANGE_EVENTS_ENV) == null) withProperty(null, () -> assertTrue(Policy.defaults().rangeEvents()));
    }

    @Test
    void withRangeEventsKeepsTheRestOfThePolicy() {
        PathLearner learner = new PathLearner(5);
        Policy p = new Policy(Policy.CachedPages.ALLOW, learner, true).withRangeEvents(false);
        assertEquals(Policy.CachedPages.ALLOW, p.cachedPages());
        assertEquals(learner, p.learner());
        assertFalse(p.rangeEvents());
    }

    @Test
    void switchedOffAStackSaysALeaseHoldsChangesBack() throws Exception {
        try (FsStack mm = FsStack.open(Topology.defaults(), Policy.defaults().withRangeEvents(false))) {
            String how = mm.fs().changesHeardBy(java.nio.file.Path.of("/nonexistent"));
            assertTrue(how.startsWith("a read lease") && how.contains("switched off"), how);
        }
    }
}
