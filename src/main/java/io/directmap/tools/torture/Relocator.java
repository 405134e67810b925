package io.directmap.tools.torture;

import io.directmap.tools.Commands;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The torture's relocating change: the file system's defragmenter run on the file (e4defrag,
 * xfs_fsr, btrfs filesystem defragment; each keeps the inode and moves its blocks). A run counts
 * as a relocation only where the extent map before and after it places the same bytes elsewhere
 * ({@link Placement}). The tool gets an argument list, no shell; its exit status tells nothing we
 * use (e4defrag and xfs_fsr exit non-zero when there was nothing to gain or the file was busy), so
 * a failure is counted and its words kept, not thrown.
 */
public final class Relocator {
    /**
     * The runs: how many moved blocks, how many left every block where it was, how many failed
     * without moving anything (the first failure's words), and the bytes moved over all runs.
     */
    public record Relocations(String tool, int runs, int moved, long movedBytes, int unchanged, int failed, String firstFailure) {
        String render() {
            if (runs == 0) return "none";
            return String.format("%d of %d %s runs moved blocks (%s in all), %d left them in place, %d failed%s", moved, runs, tool,
                    io.directmap.sys.Units.bytes(movedBytes), unchanged, failed, firstFailure == null ? "" : " (" + firstFailure + ")");
        }

        Map<String, Object> json() {
            return Torture.jsonMap("tool", tool, "runs", runs, "moved", moved, "moved_bytes", movedBytes, "unchanged", unchanged,
                    "failed", failed, "first_failure", firstFailure);
        }
    }

    private final List<String> tool; // null where the file system has none
    private int runs, moved, unchanged, failed;
    private long movedBytes;
    private String firstFailure;

    Relocator(String fsType) {
        this.tool = switch (fsType) {
            case "ext4" -> List.of("e4defrag");
            case "xfs" -> List.of("xfs_fsr");
            case "btrfs" -> List.of("btrfs", "filesystem", "defragment", "-f");
            default -> null;
        };
    }

    /** Runs the tool on file (of length bytes) and counts what it did. */
    void run(Path file, long length) throws IOException {
        if (tool == null) return;
        Placement before = Placement.of(file, length);
        List<String> cmd = new ArrayList<>(tool);
        cmd.add(file.toString());
        String failure = null;
        if (!Commands.available(tool.getFirst())) {
            failure = tool.getFirst() + " is not installed";
        } else {
            try {
                Commands.run(cmd);
            } catch (IOException e) {
                failure = e.getMessage();
            }
        }
        count(Placement.of(file, length).movedBytesSince(before), failure);
    }

    private synchronized void count(long bytesMoved, String failure) {
        runs++;
        movedBytes += bytesMoved;
        // Each run is one of: moved, unchanged, failed (a failed run that still moved counts as moved).
        if (bytesMoved > 0) moved++; else if (failure == null) unchanged++; else failed++;
        if (failure != null && firstFailure == null) {
            firstFailure = failure.length() > 200 ? failure.substring(0, 197) + "..." : failure;
        }
    }

    synchronized Relocations result() {
        return new Relocations(tool == null ? "none" : String.join(" ", tool), runs, moved, movedBytes, unchanged, failed,
                firstFailure);
    }
}
