package io.directmap.serve;

import io.directmap.sys.Errno;
import io.directmap.sys.FileHandle;
import io.directmap.sys.FileVersion;
import io.directmap.sys.OpenBeneath;
import io.directmap.sys.SysException;
import java.nio.file.Path;

/**
 * Finds a request's file under the served directory, with the kernel doing the checking
 * ({@link OpenBeneath}: openat2 with RESOLVE_BENEATH), so no "..", no absolute symlink and no
 * symlink that leads out of the directory is followed, even one swapped in while the request runs.
 * Only regular files are served; a FIFO, a device, a socket or a directory is refused after fstat
 * of what was opened (opened without blocking, so a FIFO does not wait for a writer).
 *
 * <p>A name that leads out of the directory gets 404, the same as a name that does not exist: the
 * server does not tell a prober whether something exists outside what it serves. A name inside
 * that is not a regular file, or not readable, gets 403.
 */
final class Resolver implements AutoCloseable {
    /** Why a request's path is not served; each with its status code. */
    enum Reason {
        /** A path that is not a path: a NUL byte, not absolute, too long. */
        BAD_PATH(400, "bad_path"),
        /** Nothing by that name under the directory. */
        NOT_FOUND(404, "not_found"),
        /** The name leads out of the directory ("..", a symlink out, a magic link): answered as not found. */
        OUTSIDE(404, "outside_root"),
        /** A directory, FIFO, device or socket: only regular files are served. */
        NOT_REGULAR(403, "not_regular"),
        /** The server may not read it. */
        NO_PERMISSION(403, "no_permission");

        final int status;
        final String code;

        Reason(int status, String code) {
            this.status = status;
            this.code = code;
        }
    }

    /** What a path resolved to. */
    sealed interface Resolved {}

    /** An open regular file and its version now; the caller closes the handle. */
    record Found(String name, FileHandle handle, FileVersion.Version version) implements Resolved {}

    /** Not served, and why. */
    record Refused(Reason reason, String detail) implements Resolved {}

    private final Path dir;
    private final FileHandle root;

    Resolver(Path dir) throws SysException {
        this.dir = dir;
        this.root = OpenBeneath.root(dir);
    }

    Path directory() { return dir; }

    /** The decoded path of a request ("/a/b.bin"). */
    Resolved resolve(String path) {
        if (path.isEmpty() || path.charAt(0) != '/' || path.indexOf('\0') >= 0 || path.length() > 4096) {
            return new Refused(Reason.BAD_PATH, "the path must start with / and hold no NUL byte");
        }
        String name = path.replaceFirst("^/+", "");
        if (name.isEmpty()) return new Refused(Reason.NOT_REGULAR, "/ is the directory; name a file");
        FileHandle h;
        try {
            h = OpenBeneath.open(root, name);
        } catch (SysException e) {
            return switch (e.errno()) {
                case OpenBeneath.EXDEV, OpenBeneath.ELOOP -> new Refused(Reason.OUTSIDE, name + ": " + e.getMessage());
                case Errno.EACCES, Errno.EPERM -> new Refused(Reason.NO_PERMISSION, name + ": " + e.getMessage());
                default -> new Refused(Reason.NOT_FOUND, name + ": " + e.getMessage());
            };
        }
        try {
            FileVersion.Version v = FileVersion.of(h);
            if (!v.regular()) {
                h.close();
                return new Refused(Reason.NOT_REGULAR, name + " is not a regular file");
            }
            return new Found(name, h, v);
        } catch (SysException e) {
            try {
                h.close();
            } catch (SysException c) {
                e.addSuppressed(c);
            }
            return new Refused(Reason.NOT_FOUND, name + ": " + e.getMessage());
        }
    }

    @Override
    public void close() throws SysException {
        root.close();
    }
}
