package io.directmap.fs;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/** One device_map decision for one range, for JDK Flight Recorder (jfr print --events io.directmap.DeviceMap). */
@Name("io.directmap.DeviceMap")
@Label("Device Map Decision")
@Category({"DirectMap"})
@Description("The file system's and block device's decision for one range of a device_map call")
@StackTrace(false)
final class DeviceMapEvent extends jdk.jfr.Event {
    @Label("File") String file;
    @Label("Start") @DataAmount long start;
    @Label("End") @DataAmount long end;
    @Label("Outcome") @Description("direct or fallback") String outcome;
    @Label("Refused By") String refusedBy;
    @Label("Reason") String reason;
    @Label("Detail") String detail;
    @Label("Importer") String importer;
    @Label("Block Device") String device;
    @Label("Bus Address") long busAddress;
}
