package io.directmap.fs;

import java.io.IOException;

/** STUB (not committed): the API of /work/coord/fanotify-api.md, until core's arrives. */
public final class ChangeWatch implements AutoCloseable {
    public boolean available() { return false; }
    public String why() { return "stub"; }
    public Watched watch(OpenFile f, Listener l) throws IOException { throw new IOException("stub"); }
    public sealed interface Watched {
        record Marked(Watch watch) implements Watched {}
        record Refused(String why) implements Watched {}
    }
    public interface Watch extends AutoCloseable { @Override void close() throws IOException; }
    public interface Listener {
        Verdict opening(Task t, io.directmap.sys.TaskSyscall.Access.Open a);
        Verdict changing(Task t, Change c);
        void writerClosed(Task t);
    }
    public record Task(int pid, int tid, String command) {}
    public record Change(Kind kind, long offset, long length, String detail) {
        public enum Kind { WRITE, TRUNCATE, FALLOCATE, PUNCH_HOLE, MMAP_WRITE, UNKNOWN }
    }
    public sealed interface Verdict {
        Verdict ALLOW = new Allow();
        record Allow() implements Verdict {}
        record Deny(int errno, String reason) implements Verdict {}
    }
    @Override public void close() {}
}
