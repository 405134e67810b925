package io.directmap.mm;

import io.directmap.block.BlockLayer;
import io.directmap.fs.FsLayer;
import io.directmap.fs.OpenFile;
import io.directmap.fs.Policy;
import io.directmap.lang.Closer;
import io.directmap.pci.Topology;
import io.directmap.sys.Mmap;
import io.directmap.sys.SysException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A process's view: the files it has mapped and the layers beneath (file systems, block devices,
 * the bus). Step 1 of the proposal: a program mmaps a file, intending never to touch it with the CPU.
 */
public final class AddressSpace implements AutoCloseable {
    private final Topology topology;
    private final BlockLayer blocks;
    private final FsLayer fs;
    private final FileVmOperations fileOps;
    private final List<Vma> vmas = new ArrayList<>();

    private AddressSpace(Topology topology, Policy policy) {
        this.topology = topology;
        this.blocks = new BlockLayer(topology);
        this.fs = new FsLayer(blocks, policy);
        this.fileOps = new FileVmOperations(fs);
    }

    public static AddressSpace create(Topology topology, Policy policy) {
        return new AddressSpace(topology, policy);
    }

    public static AddressSpace create() {
        return create(Topology.defaults(), Policy.defaults());
    }

    public Topology topology() { return topology; }
    public FsLayer fs() { return fs; }

    /** mmap(PROT_READ, MAP_SHARED) of the whole file; bad input fails with a message that names the file. */
    public Vma mmap(Path path) throws IOException {
        OpenFile file = OpenFile.open(path);
        Arena arena = Arena.ofShared();
        try {
            MemorySegment pages = Mmap.mapShared(file.handle(), file.stat().size(), arena);
            Vma vma = new Vma(file, arena, pages, fileOps, this::forget);
            synchronized (vmas) {
                vmas.add(vma);
            }
            return vma;
        } catch (IOException | RuntimeException e) {
            arena.close();
            try {
                file.close();
            } catch (SysException c) {
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

    @Override
    public void close() throws IOException {
        List<Vma> all;
        synchronized (vmas) {
            all = new ArrayList<>(vmas);
            vmas.clear();
        }
        Closer<IOException> closer = Closer.keeping(IOException.class);
        closer.closeEach(all, Vma::close);
        closer.run(fs::close);
        closer.run(blocks::close);
        closer.throwIfFailed();
    }
}
