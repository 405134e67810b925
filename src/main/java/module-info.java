/**
 * DirectMap: a file's blocks mapped for a device and read straight from the block device, after
 * the LSF/MM 2019 "direct block mapping" proposal, with the filesystem able to refuse and
 * invalidate a mapping at any moment.
 *
 * <p>What is exported is a decision (ModuleDescriptorTest asserts exactly this list):
 * <ul>
 *   <li>{@code io.directmap}: the library, the few types a Java program maps and reads with;</li>
 *   <li>{@code io.directmap.mm}: the contract for driver writers, the proposal's device_map and
 *       device_unmap callbacks, interval notifiers with read_begin / read_retry;</li>
 *   <li>{@code io.directmap.device}: importers, the devices that read through a mapping;</li>
 *   <li>{@code io.directmap.pci}: the bus they sit on, the contract's vocabulary for where a peer
 *       and an importer are (an importer is an endpoint; a mapping's route is a path between
 *       two), named by the contract's signatures.</li>
 * </ul>
 * Everything else (sys's native calls, fs, block, fault points, the tools and the dmap
 * command) is the implementation and may change without notice.
 *
 * <p>The native calls (io_uring, O_DIRECT, FIEMAP, ...) need native access: on the module path
 * run with {@code --enable-native-access=io.directmap}; on the class path with
 * {@code --enable-native-access=ALL-UNNAMED}.
 */
module io.directmap {
    requires info.picocli;          // the dmap command
    requires com.google.gson;       // fio's JSON report (the bench)
    requires jdk.jfr;               // DeviceMapEvent, InvalidationEvent
    requires java.management;       // the bench's CPU time (ManagementFactory)
    requires jdk.management;        // ... and the process's (com.sun.management.OperatingSystemMXBean)
    requires io.netty.codec.http;   // dmap serve (io.directmap.serve): the HTTP/1.1 codec
    requires io.netty.codec;
    requires io.netty.handler;      // ... its idle and write timeouts
    requires io.netty.transport;
    requires io.netty.buffer;
    requires io.netty.common;
    requires io.netty.transport.classes.epoll;   // ... epoll, which gives a socket's descriptor (SIOCOUTQ)
    requires io.netty.transport.unix.common;

    exports io.directmap;           // the library
    exports io.directmap.mm;
    exports io.directmap.device;
    exports io.directmap.pci;       // the bus: the contract names its endpoints and routes

    // picocli sets the commands' @Option and @Parameters fields by reflection.
    opens io.directmap.cli to info.picocli;
}
