package io.directmap.mm;

import io.directmap.lang.Closer;
import io.directmap.pci.Topology;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A process's view: the bus it sees and the files it has mapped. Step 1 of the proposal: a
 * program mmaps a file, intending never to touch it with the CPU. A path is opened by the
 * {@link FileOpener} the address space was made with (the filesystems, {@code fs.FsStack}), which
 * gives the vma its operations; anything an exporter supplies ({@link #mmap(MappedFile,
 * VmOperations)}) gets the exporter's own operations (the proposal's device-to-device case).
 */
public final class AddressSpace implements AutoCloseable {
    private final Topology topology;
    private final FileOpener files;
    private final List<Vma> vmas = new ArrayList<>();

    private AddressSpace(Topology topology, FileOpener files) {
        this.topology = topology;
        this.files = files;
    }

    /**
     * An address space that opens paths with files. Closing it unmaps its vmas, not what is below files.
     *
     * @param topology the bus this process's devices sit on
     * @param files what opens a path and gives its vma operations (the filesystems)
     * @return the address space
     */
    public static AddressSpace create(Topology topology, FileOpener files) {
        return new AddressSpace(topology, files);
    }

    /**
     * An address space with no filesystem: it maps only what exporters hand it.
     *
     * @param topology the bus this process's devices sit on
     * @return the address space
     */
    public static AddressSpace create(Topology topology) {
        return new AddressSpace(topology, path -> {
            throw new InvalidRequestException(path + ": this address space has no filesystem to open files with; "
                    + "mmap what an exporter supplies, or make it with one (fs.FsStack)");
        });
    }

    /** {@return the bus this process's devices sit on} */
    public Topology topology() { return topology; }

    /**
     * mmap(PROT_READ, MAP_SHARED) of the whole file, with the vm operations its filesystem gives.
     *
     * @param path the file
     * @return the vma; closing it is munmap
     * @throws InvalidRequestException for bad input (no such file, empty, not a regular file), with
     *         a message that names the file and says what to do
     * @throws IOException when the system fails (open, statx, mmap)
     */
    public Vma mmap(Path path) throws IOException {
        FileOpener.Opened o = files.open(path);
        return mmap(o.file(), o.ops());
    }

    /**
     * mmap(PROT_READ, MAP_SHARED) of the whole of file, with ops as its vm operations: device_map on
     * the vma goes to ops. The vma owns file from here on (munmap closes it); so does a failure here.
     *
     * @param file what to map (its own {@link MappedFile#mapShared})
     * @param ops its vm operations
     * @return the vma; closing it is munmap
     * @throws IOException when it cannot be mapped (file is closed then)
     */
    public Vma mmap(MappedFile file, VmOperations ops) throws IOException {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment pages = file.mapShared(arena);
            Vma vma = new Vma(file, arena, pages, ops, this::forget);
            synchronized (vmas) {
                vmas.add(vma);
            }
            return vma;
        } catch (IOException | RuntimeException e) {
            arena.close();
            try {
                file.close();
            } catch (IOException c) {
                e.addSuppressed(c);
            }
            throw e;
        }
    }

    private void forget(Vma vma) {
        synchronized (vmas) {
            vmas.remove(vma);
        }
    }

    /** Unmaps every vma still mapped (munmap of each: its device mappings are released first). */
    @Override
    public void close() throws IOException {
        List<Vma> all;
        synchronized (vmas) {
            all = new ArrayList<>(vmas);
            vmas.clear();
        }
        Closer<IOException> closer = Closer.keeping(IOException.class);
        closer.closeEach(all, Vma::close);
        closer.throwIfFailed();
    }
}
