package io.directmap.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;

/** A plain text table: a header row, aligned columns, the last column left free to run long. */
final class Table {
    private final List<String[]> rows = new ArrayList<>();

    Table(String... header) {
        rows.add(header);
    }

    Table row(Object... cells) {
        String[] r = new String[cells.length];
        for (int i = 0; i < cells.length; i++) r[i] = String.valueOf(cells[i]);
        rows.add(r);
        return this;
    }

    void print(PrintWriter out) {
        int cols = rows.getFirst().length;
        int[] width = new int[cols];
        for (String[] r : rows) for (int i = 0; i < cols - 1; i++) width[i] = Math.max(width[i], r[i].length());
        for (String[] r : rows) {
            StringBuilder sb = new StringBuilder("  ");
            for (int i = 0; i < cols; i++) {
                sb.append(i < cols - 1 ? String.format("%-" + width[i] + "s  ", r[i]) : r[i]);
            }
            out.println(sb.toString().stripTrailing());
        }
    }
}
