package io.directmap.fs;

import io.directmap.mm.DeviceMapping;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Segment;
import io.directmap.mm.Transfer;
import io.directmap.mm.VmOperations;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology.Endpoint;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** The vm operations of a regular file: fault through the mapping, device_map through the file system. */
final class FileVmOperations implements VmOperations {
    private final FsLayer fs;

    FileVmOperations(FsLayer fs) {
        this.fs = fs;
    }

    @Override
    public MemorySegment fault(Vma vma, long offset, long length) throws IOException {
        check(vma, offset, offset + length);
        return vma.pages().asSlice(offset, length);
    }

    @Override
    public DeviceMapping deviceMap(Vma vma, MapRequest request) throws IOException {
        if (vma.isClosed()) throw new IllegalStateException(vma + " is unmapped");
        // A write may reach past the end of the mapping: the file system writes that part (PAST_EOF).
        if (!request.write()) check(vma, request.start(), request.end());
        FileMapping m = fs.deviceMap(OpenFile.of(vma), request, vma.owner());
        try {
            vma.onUnmap(m, () -> fs.deviceUnmap(m));
        } catch (RuntimeException | Error e) {
            fs.deviceUnmap(m);   // unmapped meanwhile: munmap will not release what it never saw
            throw e;
        }
        return m;
    }

    @Override
    public boolean verify(Vma vma, DeviceMapping mapping, long start, long end, boolean readFailed) throws IOException {
        if (readFailed) {
            // Ask the block devices what changed; one that shrank or went away takes its mappings back now.
            for (Segment s : mapping.segments()) {
                if (s instanceof Segment.Direct d && d.start() < end && start < d.end()) fs.blocks().check(Segments.device(d));
            }
        }
        return fs.verify(mapping, start, end);
    }

    @Override
    public void store(Vma vma, long offset, MemorySegment src) throws IOException {
        fs.store(OpenFile.of(vma), offset, src);
    }

    @Override
    public void awaitBreaks(Vma vma) {
        fs.awaitLeaseBreak(OpenFile.of(vma));
    }

    @Override
    public void written(Vma vma, DeviceMapping mapping, long start, long end, MemorySegment src, boolean durable) throws IOException {
        // This process's own mapping may have faulted pages of a direct range in (fault-around,
        // readahead): unmap them, so the page cache can drop them.
        long page = io.directmap.sys.Process.PAGE_SIZE;
        for (Segment s : mapping.segments()) {
            long a = Math.max(start, s.start()) / page * page, b = Math.min(Math.min(end, s.end()), vma.length());
            if (s instanceof Segment.Direct && a < b) io.directmap.sys.Mmap.dropMappedPages(vma.pages().asSlice(a, b - a));
        }
        fs.written(mapping, start, end, src, durable);
    }

    @Override
    public void observe(Vma vma, Transfer way, long bytes, long nanos) {
        fs.observe(way, bytes, nanos);
    }

    @Override
    public void deviceUnmap(Vma vma, Endpoint importer, DeviceMapping mapping) {
        if (!mapping.importer().equals(importer)) {
            throw new IllegalArgumentException(mapping + " belongs to " + mapping.importer().name() + ", not " + importer.name());
        }
        vma.forget(mapping);
        fs.deviceUnmap(mapping);
    }

    private static void check(Vma vma, long start, long end) throws InvalidRequestException {
        long page = io.directmap.sys.Process.PAGE_SIZE;
        long pageEnd = (vma.length() + page - 1) / page * page;
        if (start < 0 || end < start || end > pageEnd) {
            throw new InvalidRequestException(vma.file().path() + ": range [" + start + ", " + end
                    + ") is outside the mapping [0, " + vma.length() + ")");
        }
    }
}
