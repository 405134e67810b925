package io.directmap.serve;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.AddressSpace;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.sys.FileHandle;
import io.directmap.sys.FileVersion;
import io.directmap.sys.Process;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * The NIC importer: a software device with the nic profile that maps each file it serves through
 * device_map, window by window (a {@link Binding} of the whole file, LEARN policy in the file
 * system), and keeps one {@link ServedFile} per version of a file, by identity and version (st_dev,
 * st_ino, size, mtime, ctime): a file changed is a new entry, mapped afresh; the old one is closed
 * when its last response ends.
 *
 * <p>The file is mapped through the descriptor the request opened beneath the served directory
 * ({@code /proc/self/fd/N} names that very inode while N is open), never by its name again.
 */
final class NicImporter implements AutoCloseable {
    /** Versions kept mapped while no response uses them (each holds a vma, a binding and, while mapped, a read lease). */
    static final int KEPT_IDLE = 256;

    private final AddressSpace space;
    private final SoftwareDevice nic;
    private final long holdNanos;
    private final Map<FileVersion.Version, ServedFile> cache = new LinkedHashMap<>(16, 0.75f, true);   // guarded by itself
    private final ExecutorService closer = Executors.newSingleThreadExecutor(
            Thread.ofPlatform().daemon().name("dmap-serve-unmap").factory());
    private boolean closed;   // guarded by cache

    NicImporter(AddressSpace space, SoftwareDevice nic, Duration hold) {
        this.space = space;
        this.nic = nic;
        this.holdNanos = hold.toNanos();
    }

    SoftwareDevice device() { return nic; }

    /** NIC memory for one connection's windows. */
    DeviceMemory.Buffer allocate(String what, long bytes) throws IOException {
        return nic.allocate(what, bytes, "serve fewer connections at once (--max-connections), or use a smaller --window");
    }

    /**
     * A use of the served file for the version v of the file open as handle; give it back with
     * {@link #release}. Empty when the file changed between the caller's statx and the mapping (the
     * caller looks again).
     */
    java.util.Optional<ServedFile> acquire(FileHandle handle, FileVersion.Version v) throws IOException {
        synchronized (cache) {
            if (closed) throw new IllegalStateException("the server is closing");
            ServedFile f = cache.get(v);
            if (f != null && f.acquire()) return java.util.Optional.of(f);
        }
        Path proc = Path.of("/proc/self/fd/" + handle.fd());
        Vma vma = space.mmap(proc);
        ServedFile f;
        try {
            if (vma.length() != v.size()) {
                vma.close();
                return java.util.Optional.empty();
            }
            FileChannel channel = FileChannel.open(proc, StandardOpenOption.READ);
            long page = Process.PAGE_SIZE;
            long end = (v.size() + page - 1) / page * page;
            long window = Math.max(8L << 20, Binding.smallestWindow(end));
            ServedFile[] self = new ServedFile[1];
            try {
                f = new ServedFile(v, vma, channel, holdNanos, () -> changed(self[0]),
                        m -> nic.bind(m, 0, end, window, Set.of(), MapMode.MIXED));
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
            self[0] = f;
        } catch (IOException | RuntimeException e) {
            try {
                vma.close();
            } catch (IOException | RuntimeException c) {
                e.addSuppressed(c);
            }
            throw e;
        }
        f.acquire();   // the cache's use
        f.acquire();   // the caller's
        List<ServedFile> dropped = new ArrayList<>();
        synchronized (cache) {
            ServedFile old = cache.put(v, f);
            if (old != null) dropped.add(old);
            Iterator<ServedFile> it = cache.values().iterator();
            while (cache.size() > KEPT_IDLE && it.hasNext()) {
                ServedFile idle = it.next();
                it.remove();
                dropped.add(idle);
            }
        }
        for (ServedFile d : dropped) release(d);
        return java.util.Optional.of(f);
    }

    /** The guard saw a change: the version is served no more; its mappings go once its responses end. */
    private void changed(ServedFile f) {
        boolean ours;
        synchronized (cache) {
            ours = cache.remove(f.version, f);
        }
        if (ours) release(f);
    }

    void release(ServedFile f) {
        if (!f.release()) return;
        // Never on the thread of an invalidation (the guard's caller): the unmap waits for it.
        try {
            closer.execute(() -> closeQuietly(f));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            closeQuietly(f);
        }
    }

    private static void closeQuietly(ServedFile f) {
        try {
            f.close();
        } catch (IOException | RuntimeException e) {
            System.getLogger("io.directmap.serve").log(System.Logger.Level.WARNING, "unmapping " + f + " failed", e);
        }
    }

    /** Unmaps every version kept; the responses must have ended. */
    @Override
    public void close() {
        List<ServedFile> all;
        synchronized (cache) {
            closed = true;
            all = new ArrayList<>(cache.values());
            cache.clear();
        }
        for (ServedFile f : all) release(f);
        closer.shutdown();
        try {
            if (!closer.awaitTermination(30, TimeUnit.SECONDS)) {
                System.getLogger("io.directmap.serve").log(System.Logger.Level.WARNING, "unmapping took over 30 s; leaving it");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
