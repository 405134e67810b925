package io.directmap.mm;

import java.io.IOException;
import java.nio.file.Path;

/**
 * What an address space asks to mmap a path: the file, and the vm operations its vma gets (the
 * proposal: "a file's vma gets them from its filesystem"). The filesystems' stack implements it
 * ({@code fs.FsStack}); an address space made without one maps only what an exporter hands it
 * ({@link AddressSpace#mmap(MappedFile, VmOperations)}).
 */
@FunctionalInterface
public interface FileOpener {
    /**
     * A file opened for mapping, and the operations its vma will have.
     *
     * @param file what the vma maps
     * @param ops where device_map on the vma goes
     */
    record Opened(MappedFile file, VmOperations ops) {}

    /**
     * Opens path for mapping. Bad input (no such file, a directory, an empty file) fails with an
     * {@link InvalidRequestException} that names the path and says what to do.
     *
     * @param path the file
     * @return the open file and its vma's operations
     * @throws IOException for bad input (an {@link InvalidRequestException}) or a failed system call
     */
    Opened open(Path path) throws IOException;
}
