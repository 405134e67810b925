package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.Vma;
import io.directmap.tools.Workloads;
import java.nio.file.Path;
import java.util.List;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every decision is a JFR event that standard tools can read. */
class DeviceMapEventTest {
    @TempDir Path dir;

    @Test
    void eachSegmentIsRecorded() throws Exception {
        Path file = dir.resolve("watched.bin");
        Workloads.write(file, 0, 1 << 20, 90);
        Path jfr = dir.resolve("rec.jfr");
        try (Recording rec = new Recording()) {
            rec.enable("io.directmap.DeviceMap");
            rec.start();
            try (FsStack mm = FsStack.open(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
                 Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, 0, 1 << 20)) {
                assertFalse(a.segments().isEmpty());
            }
            rec.stop();
            rec.dump(jfr);
        }
        List<RecordedEvent> events = RecordingFile.readAllEvents(jfr).stream()
                .filter(e -> e.getEventType().getName().equals("io.directmap.DeviceMap"))
                .filter(e -> file.toString().equals(e.getString("file"))).toList();
        assertFalse(events.isEmpty(), "a DeviceMap event for " + file);
        RecordedEvent e = events.getFirst();
        assertEquals(0, e.getLong("start"));
        assertEquals(1 << 20, e.getLong("end"));
        assertEquals("gpu0", e.getString("importer"));
        // Freshly written and in the page cache: the file system refuses it, and the event says so.
        assertEquals("fallback", e.getString("outcome"));
        assertEquals("filesystem", e.getString("refusedBy"));
        assertFalse(e.getString("reason").isEmpty());
    }
}
