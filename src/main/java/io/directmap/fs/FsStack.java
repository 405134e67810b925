package io.directmap.fs;

import io.directmap.block.BlockLayer;
import io.directmap.lang.Closer;
import io.directmap.mm.AddressSpace;
import io.directmap.mm.FileOpener;
import io.directmap.mm.VmOperations;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The standard stack, wired in one place: the bus ({@link Topology}), the block devices on it
 * ({@link BlockLayer}), the one generic file system layer over them ({@link FsLayer}), and an
 * {@link AddressSpace} whose vmas of regular files get the file system's vm operations. Closing
 * it unmaps every vma, then closes the file system layer and the block devices.
 */
public final class FsStack implements AutoCloseable {
    private final Topology topology;
    private final BlockLayer blocks;
    private final FsLayer fs;
    private final AddressSpace space;
    private final FileVmOperations ops;
    private ChangeWatch changes;     // guarded by this; made on first use

    private FsStack(Topology topology, Policy policy) {
        this.topology = topology;
        this.blocks = new BlockLayer(topology);
        this.fs = new FsLayer(blocks, policy, this::changeWatch);
        this.ops = new FileVmOperations(fs);
        this.space = AddressSpace.create(topology, path -> new FileOpener.Opened(OpenFile.open(path), ops));
    }

    /** The stack over topology, deciding by policy. */
    public static FsStack open(Topology topology, Policy policy) {
        return new FsStack(topology, policy);
    }

    /** The stack over the default topology and policy. */
    public static FsStack open() {
        return open(Topology.defaults(), Policy.defaults());
    }

    public Topology topology() { return topology; }
    public BlockLayer blocks() { return blocks; }
    public FsLayer fs() { return fs; }
    /** The address space: mmap of paths (through the file systems) and of what exporters supply. */
    public AddressSpace space() { return space; }

    /**
     * The vm operations a regular file's vma gets: fault through the page cache, device_map
     * through {@link FsLayer}. For a caller that wraps them ({@link AddressSpace#mmap(io.directmap.mm.MappedFile,
     * VmOperations)} with an {@link OpenFile} and its own operations around these).
     */
    public VmOperations vmOperations() { return ops; }

    /** {@link AddressSpace#mmap(Path)}: mmap of the whole file, with the file system's vm operations. */
    public Vma mmap(Path path) throws IOException {
        return space.mmap(path);
    }

    /**
     * The stack's one {@link ChangeWatch} (a fanotify group and its reader thread), made on first
     * use; see its {@link ChangeWatch#available()} before relying on it. Closed with the stack.
     */
    public synchronized ChangeWatch changeWatch() {
        if (changes == null) changes = ChangeWatch.open();
        return changes;
    }

    /**
     * mmap of the whole file opened for device writes ({@link OpenFile#openForWrite}): device_map
     * with WRITE may go direct, under a write lease, and the fallback writes go through its
     * descriptor. The mapping itself stays PROT_READ: the CPU does not write through it.
     */
    public Vma mmapForWrite(Path path) throws IOException {
        return space.mmap(OpenFile.openForWrite(path), ops);
    }

    @Override
    public void close() throws IOException {
        Closer<IOException> closer = Closer.keeping(IOException.class);
        closer.run(space::close);
        ChangeWatch c;
        synchronized (this) {
            c = changes;
        }
        if (c != null) closer.run(c::close);
        closer.run(fs::close);
        closer.run(blocks::close);
        closer.throwIfFailed();
    }
}
