package io.directmap.fs;

import io.directmap.lang.IntervalIndex;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The live device mappings of each inode, in an {@link IntervalIndex}, so the file system finds
 * exactly the mappings that overlap a changed range.
 */
public final class MappingTracker {
    /** One inode's mappings, guarded by the index itself. */
    private final Map<String, IntervalIndex<FileMapping>> byFile = new ConcurrentHashMap<>();

    void add(FileMapping m) {
        IntervalIndex<FileMapping> iv = byFile.computeIfAbsent(m.file().key(), k -> new IntervalIndex<>());
        synchronized (iv) {
            iv.add(m.start(), m.end(), m);
        }
    }

    void remove(FileMapping m) {
        IntervalIndex<FileMapping> iv = byFile.get(m.file().key());
        if (iv == null) return;
        synchronized (iv) {
            iv.remove(m.start(), m.end(), m);
        }
    }

    /** The live mappings of the inode of file that overlap [start, end). */
    public List<FileMapping> overlapping(OpenFile file, long start, long end) {
        return overlapping(file.key(), start, end);
    }

    List<FileMapping> overlapping(String key, long start, long end) {
        IntervalIndex<FileMapping> iv = byFile.get(key);
        if (iv == null) return List.of();
        synchronized (iv) {
            return iv.overlapping(start, end);
        }
    }

    /** Every live mapping, of every file. */
    public List<FileMapping> all() {
        List<FileMapping> out = new ArrayList<>();
        for (IntervalIndex<FileMapping> iv : byFile.values()) {
            synchronized (iv) {
                out.addAll(iv.all());
            }
        }
        return out;
    }

    public int size() {
        int n = 0;
        for (IntervalIndex<FileMapping> iv : byFile.values()) {
            synchronized (iv) {
                n += iv.size();
            }
        }
        return n;
    }
}
