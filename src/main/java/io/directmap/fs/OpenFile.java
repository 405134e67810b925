package io.directmap.fs;

import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.MappedFile;
import io.directmap.mm.Vma;
import io.directmap.sys.Errno;
import io.directmap.sys.FileHandle;
import io.directmap.sys.Mmap;
import io.directmap.sys.MountInfo;
import io.directmap.sys.StatFs;
import io.directmap.sys.Statx;
import io.directmap.sys.SysException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A file opened for device mapping: its descriptor (kept open, so a file deleted while mapped
 * keeps its blocks), what statx said at open, its file system and adapter.
 */
public final class OpenFile implements MappedFile {
    private final Path path;
    private final FileHandle handle;
    private final Statx.Info stat;
    private final FsAdapter adapter;
    private final Optional<MountInfo.Mount> mount;
    private final boolean writable;
    /** Coherence state, guarded by itself: see {@link FsLayer}. */
    final Coherence coherence = new Coherence();

    /** The lease and change sequence of one open file (one struct file, as leases are in Linux). */
    static final class Coherence {
        /** Bumped on every lease break or release; a decision that saw it change is made again. */
        long seq;
        boolean leaseHeld;
        /** A lease break is being handled: the devices are letting go; no new lease until it is given back. */
        boolean breaking;
        int liveMappings;
    }

    private OpenFile(Path path, FileHandle handle, Statx.Info stat, FsAdapter adapter, Optional<MountInfo.Mount> mount,
                     boolean writable) {
        this.writable = writable;
        this.path = path;
        this.handle = handle;
        this.stat = stat;
        this.adapter = adapter;
        this.mount = mount;
    }

    /** Opens a regular, non-empty file; anything else is refused with a message that says what to do. */
    public static OpenFile open(Path path) throws IOException {
        return open(path, false);
    }

    /**
     * Opens a regular, non-empty file for device writes (O_RDWR): its one descriptor holds the
     * write lease (a write lease needs that no other descriptor is open for writing, and any other
     * open breaks it, our own too) and carries the fallback writes (pwrite through the page cache).
     */
    public static OpenFile openForWrite(Path path) throws IOException {
        return open(path, true);
    }

    private static OpenFile open(Path path, boolean writable) throws IOException {
        Path abs = path.toAbsolutePath().normalize();
        Statx.Info st;
        try {
            st = Statx.of(abs);
        } catch (SysException e) {
            if (e.errno() == Errno.ENOENT || e.errno() == Errno.ENOTDIR) {
                throw new InvalidRequestException(path + ": no such file; check the path");
            }
            if (e.errno() == Errno.EACCES) throw new InvalidRequestException(path + ": permission denied; check its permissions");
            throw e;
        }
        return open(path, st, writable);
    }

    /**
     * Opens path, which statx described as seen (before open: the name may have been given to
     * another file since). The descriptor is opened without blocking and checked with fstat, so a
     * file swapped for a FIFO, a device or another file between the stat and the open is refused
     * at once instead of waiting for a writer or mapping the wrong inode.
     */
    static OpenFile open(Path path, Statx.Info seen) throws IOException {
        return open(path, seen, false);
    }

    private static OpenFile open(Path path, Statx.Info seen, boolean writable) throws IOException {
        Path abs = path.toAbsolutePath().normalize();
        requireRegular(path, seen.type());
        if (seen.size() == 0) throw new InvalidRequestException(path + " is empty: there is nothing to map");
        FileHandle h;
        try {
            h = writable ? FileHandle.openProbeWritable(abs, false) : FileHandle.openProbe(abs, false);
        } catch (SysException e) {
            if (e.errno() == Errno.EACCES) throw new InvalidRequestException(path + ": permission denied; check its permissions");
            if (e.errno() == Errno.ENOENT) throw new InvalidRequestException(path + ": no such file (deleted just now?)");
            throw e;
        }
        try {
            Statx.Info now = Statx.of(h);
            if (now.type() != Statx.Type.REGULAR) {
                throw new InvalidRequestException(path + " was replaced between stat and open: it is now "
                        + now.type().description() + "; DirectMap maps regular files");
            }
            if (!now.sameInode(seen)) {
                throw new InvalidRequestException(path + " was replaced between stat and open (inode " + seen.dev() + "/"
                        + seen.inode() + " became " + now.dev() + "/" + now.inode() + "); try again once it stops changing");
            }
            h.blocking();
            Optional<MountInfo.Mount> mount = MountInfo.of(now.mountId());
            FsAdapter adapter = Adapters.forType(StatFs.type(h), mount.map(MountInfo.Mount::fsType).orElse(""));
            return new OpenFile(abs, h, now, adapter, mount, writable);
        } catch (IOException | RuntimeException e) {
            try {
                h.close();
            } catch (SysException c) {
                e.addSuppressed(c);
            }
            throw e;
        }
    }

    private static void requireRegular(Path path, Statx.Type type) throws InvalidRequestException {
        switch (type) {
            case REGULAR -> { }
            case DIRECTORY -> throw new InvalidRequestException(path + " is a directory; give a regular file");
            default -> throw new InvalidRequestException(path + " is " + type.description()
                    + ", not a regular file; DirectMap maps regular files");
        }
    }

    /**
     * The file system's open file behind vma; a vma of anything else (an exporter's device file)
     * is refused with the vma named.
     */
    public static OpenFile of(Vma vma) {
        if (vma.file() instanceof OpenFile f) return f;
        throw new IllegalArgumentException(vma + " does not map a file opened by the file system (it maps "
                + vma.file().getClass().getName() + ")");
    }

    @Override public Path path() { return path; }
    /** The descriptor it was opened with; closed with it. */
    public FileHandle handle() { return handle; }
    public Statx.Info stat() { return stat; }
    /** The size now (it can change after open). */
    @Override public long size() throws SysException { return Statx.of(handle).size(); }

    @Override
    public MemorySegment mapShared(Arena arena) throws SysException {
        return Mmap.mapShared(handle, size(), arena);
    }

    public FsAdapter adapter() { return adapter; }
    /** Opened for device writes (O_RDWR, write lease): {@link #openForWrite}. */
    public boolean writable() { return writable; }
    public String fsType() { return adapter.name(); }
    public String mountPoint() { return mount.map(m -> m.mountPoint().toString()).orElse("?"); }
    public String mountSource() { return mount.map(MountInfo.Mount::source).orElse(""); }
    String mountOptions() { return mount.map(MountInfo.Mount::options).orElse(""); }

    /** Identity of the inode: st_dev and st_ino. */
    public String key() { return stat.dev() + "/" + stat.inode(); }

    @Override
    public void close() throws SysException {
        synchronized (coherence) {
            if (coherence.leaseHeld) io.directmap.sys.Leases.shared().release(handle);
            coherence.leaseHeld = false;
        }
        handle.close();
    }

    @Override
    public String toString() { return path.toString(); }
}
