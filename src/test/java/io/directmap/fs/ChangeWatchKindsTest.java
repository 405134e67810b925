package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fs.ChangeWatch.Change;
import io.directmap.fs.ChangeWatch.Change.Kind;
import io.directmap.sys.Fanotify;
import io.directmap.sys.TaskSyscall.Access;
import org.junit.jupiter.api.Test;

/**
 * Which change each access of a FAN_PRE_ACCESS event is, over which range: pure, no kernel.
 * The event's range is the kernel's page-rounded one; a truncate reaches from the new size (the
 * syscall's) to the end; collapsing or inserting shifts everything after the offset.
 */
class ChangeWatchKindsTest {
    static final Fanotify.Event AT_8192 = new Fanotify.Event(Fanotify.FAN_PRE_ACCESS, null, 42, 8192, 4096);
    static final Fanotify.Event NO_RANGE = new Fanotify.Event(Fanotify.FAN_PRE_ACCESS, null, 42, -1, -1);

    static Change change(Access a, Fanotify.Event e) { return ChangeWatch.change(a, e); }

    @Test
    void readsAndPrivateMapsChangeNothing() {
        assertNull(change(new Access.Read("pread64"), AT_8192));
        assertNull(change(new Access.Mmap(false), AT_8192));
    }

    @Test
    void writesPunchesAndSharedMapsTakeTheEventsRange() {
        assertRange(Kind.WRITE, 8192, 4096, change(new Access.Write("pwrite64"), AT_8192));
        assertRange(Kind.PUNCH_HOLE, 8192, 4096, change(new Access.Fallocate(0x03), AT_8192));
        assertRange(Kind.FALLOCATE, 8192, 4096, change(new Access.Fallocate(0x10), AT_8192));   // zero range
        assertRange(Kind.FALLOCATE, 8192, 4096, change(new Access.Fallocate(0x00), AT_8192));   // allocate
        assertRange(Kind.MMAP_WRITE, 8192, 4096, change(new Access.Mmap(true), AT_8192));
        assertTrue(change(new Access.Write("pwrite64"), AT_8192).detail().contains("pwrite64"));
    }

    @Test
    void truncatesCollapsesAndInsertsReachTheEnd() {
        Change t = change(new Access.Truncate(5000), AT_8192);
        assertRange(Kind.TRUNCATE, 5000, Long.MAX_VALUE - 5000, t);
        assertEquals(Long.MAX_VALUE, t.end());
        assertRange(Kind.FALLOCATE, 8192, Long.MAX_VALUE - 8192, change(new Access.Fallocate(0x08), AT_8192));
        assertRange(Kind.FALLOCATE, 8192, Long.MAX_VALUE - 8192, change(new Access.Fallocate(0x20), AT_8192));
    }

    @Test
    void whatIsNotKnownMayChangeTheRangeOrWithoutOneTheFile() {
        Change u = change(new Access.Unknown("io_uring_enter: ..."), AT_8192);
        assertRange(Kind.UNKNOWN, 8192, 4096, u);
        assertTrue(u.detail().contains("io_uring"), u.detail());
        Change all = change(new Access.Unknown("task 9 is gone"), NO_RANGE);
        assertRange(Kind.UNKNOWN, 0, Long.MAX_VALUE, all);
        assertEquals(Long.MAX_VALUE, all.end());
    }

    static void assertRange(Kind kind, long offset, long length, Change c) {
        assertEquals(kind, c.kind(), c.toString());
        assertEquals(offset, c.offset(), c.toString());
        assertEquals(length, c.length(), c.toString());
    }
}
