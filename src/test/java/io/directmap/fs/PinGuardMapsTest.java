package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Which /proc/PID/maps lines are a shared mapping of the pinned inode (pure). */
class PinGuardMapsTest {
    static final List<String> MAPS = List.of(
            "7f0000000000-7f0000001000 r--p 00000000 fd:01 1234 /data/a.bin",
            "7f0000002000-7f0000003000 rw-s 00000000 fd:02 1234 /other/a.bin",
            "7f0000004000-7f0000005000 rw-s 00001000 fd:01 99 /data/b.bin",
            "7f0000006000-7f0000007000 r--s 00000000 fd:01 1234 /data/a.bin",
            "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]");

    @Test
    void onlyASharedMappingOfTheSameDeviceAndInodeCounts() {
        assertEquals(Optional.of(MAPS.get(3)), PinGuard.sharedMapping(MAPS, 0xfd, 1, 1234),
                "shared, even read-only now: mprotect may add write to a mapping of a writable descriptor");
        assertEquals(Optional.empty(), PinGuard.sharedMapping(MAPS.subList(0, 3), 0xfd, 1, 1234),
                "private, another device, another inode");
        assertEquals(Optional.empty(), PinGuard.sharedMapping(List.of("", "garbage", "a-b rw-s x zz:yy 1"), 0xfd, 1, 1234));
    }

    @Test
    void aProcessThatIsGoneMapsNothing() {
        assertEquals(Optional.empty(), PinGuard.sharedMapping(Path.of("/proc/2147483646/maps"), 0xfd, 1, 1234));
    }
}
