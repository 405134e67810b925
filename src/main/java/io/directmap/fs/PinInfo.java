package io.directmap.fs;

import java.nio.file.Path;
import java.util.List;

/**
 * One live pin, as {@code dmap pins} shows it.
 *
 * @param file the file (the name it was pinned by; the pin holds the inode)
 * @param dev the inode's st_dev
 * @param inode the inode's number
 * @param start the first file offset held
 * @param end the file offset after the last one
 * @param importer the device that asked for the pin
 * @param createdMillis when it was made (System.currentTimeMillis)
 * @param references the buffer's references
 * @param attachments the importers attached, "(dynamic)" after the dynamic ones
 * @param pinned whether the blocks are held now (else only dynamic attachments are left)
 * @param refused how many opens and changes it refused
 * @param lastRefused the last refusal, for a person; empty when none
 */
public record PinInfo(Path file, String dev, long inode, long start, long end, String importer, long createdMillis,
                      int references, List<String> attachments, boolean pinned, long refused, String lastRefused) {
    /** Copies attachments. */
    public PinInfo {
        attachments = List.copyOf(attachments);
    }
}
