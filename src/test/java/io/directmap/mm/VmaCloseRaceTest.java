package io.directmap.mm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.directmap.fs.FsStack;
import io.directmap.tools.Workloads;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * munmap while another thread drops the CPU's page mappings (madvise on the vma's pages): a shared
 * arena cannot close while a system call holds it, so close waits for the call instead of failing
 * and leaving the file mapped (which once kept a scratch file system busy at unmount).
 */
class VmaCloseRaceTest {
    @TempDir Path dir;

    @Test
    void closeWaitsForAPageCallInsteadOfFailing() throws Exception {
        Path file = dir.resolve("raced.bin");
        Workloads.write(file, 0, 4 << 20, 9);
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            try (FsStack mm = FsStack.open()) {
                for (int i = 0; i < 300; i++) {
                    Vma vma = mm.mmap(file);
                    AtomicReference<Throwable> failed = new AtomicReference<>();
                    Thread dropper = Thread.ofPlatform().start(() -> {
                        try {
                            while (!vma.isClosed()) vma.dropPageMappings();
                        } catch (Throwable t) {
                            failed.set(t);
                        }
                    });
                    Thread.onSpinWait();
                    vma.close();                   // threw "Session is acquired by 1 clients" now and then
                    dropper.join();
                    assertEquals(null, failed.get());
                }
            }
        });
    }
}
