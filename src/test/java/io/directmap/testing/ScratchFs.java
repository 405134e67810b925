package io.directmap.testing;

import io.directmap.tools.ScratchFilesystem;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A loop-mounted file system for a test class: made before the first test, unmounted, detached
 * and deleted after the last, pass or fail. Where it cannot be made (not root, mkfs missing) the
 * tests are skipped with the reason, except under CI (CI=true), where that is a failure.
 */
public final class ScratchFs implements BeforeAllCallback, AfterAllCallback {
    private final ScratchFilesystem.Type type;
    private final boolean partitioned;
    private final List<String> mountOptions;
    private final boolean autoclear;
    private ScratchFilesystem fs;

    public ScratchFs(ScratchFilesystem.Type type) {
        this(type, false, List.of());
    }

    public ScratchFs(ScratchFilesystem.Type type, boolean partitioned, List<String> mountOptions) {
        this(type, partitioned, mountOptions, true);
    }

    private ScratchFs(ScratchFilesystem.Type type, boolean partitioned, List<String> mountOptions, boolean autoclear) {
        this.type = type;
        this.partitioned = partitioned;
        this.mountOptions = mountOptions;
        this.autoclear = autoclear;
    }

    /**
     * A file system on a loop device as losetup makes one (no autoclear), for tests of what an
     * administrator's losetup -d does: on a device marked autoclear from the start, losetup -d
     * changes nothing visible until its last user goes. A killed test run leaves this one attached.
     */
    public static ScratchFs withoutAutoclear(ScratchFilesystem.Type type) {
        return new ScratchFs(type, false, List.of(), false);
    }

    /** Skips (or, under CI, fails) when root-only fixtures cannot run here. */
    public static void requireRootFixtures(ScratchFilesystem.Type type) {
        Optional<String> why = ScratchFilesystem.unavailableBecause(type);
        if (why.isEmpty()) return;
        if ("true".equals(System.getenv("CI"))) {
            Assertions.fail("CI must run the root tests, but: " + why.get());
        }
        Assumptions.abort("skipped: " + why.get());
    }

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        requireRootFixtures(type);
        if (partitioned && !io.directmap.tools.Commands.available("sfdisk")) {
            String why = "sfdisk is not installed (Debian package fdisk; .ci/run installs it)";
            if ("true".equals(System.getenv("CI"))) Assertions.fail(why);
            Assumptions.abort("skipped: " + why);
        }
        fs = ScratchFilesystem.create(type, 320L << 20, partitioned, mountOptions, autoclear);
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        if (fs != null) fs.close();
        fs = null;
    }

    public Path mountPoint() { return fs.mountPoint(); }
    public ScratchFilesystem filesystem() { return fs; }
    public ScratchFilesystem.Type type() { return type; }

    /** A new path in the file system, for one test's file. */
    public Path file(String name) {
        return fs.mountPoint().resolve(name);
    }
}
