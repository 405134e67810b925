package io.directmap.fs;

import io.directmap.mm.Invalidation;
import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/** One invalidation, for JDK Flight Recorder (jfr print --events io.directmap.Invalidation). */
@Name("io.directmap.Invalidation")
@Label("Device Mapping Invalidation")
@Category({"DirectMap"})
@Description("The file system took device mappings of a range back")
@StackTrace(false)
final class InvalidationEvent extends jdk.jfr.Event {
    @Label("File") String file;
    @Label("Start") @DataAmount long start;
    @Label("End") @DataAmount long end;
    @Label("Cause") String cause;
    @Label("Detail") String detail;
    @Label("Held Back") @Description("the change waited for the devices") boolean heldBack;
    @Label("Mappings") int mappings;
    @Label("Acknowledged In") @Timespan(Timespan.NANOSECONDS) long ackNanos;
}
