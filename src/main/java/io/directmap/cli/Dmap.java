package io.directmap.cli;

import io.directmap.fs.Policy;
import io.directmap.mm.InvalidRequestException;
import io.directmap.tools.ScratchFilesystem;
import java.io.IOException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The dmap command. Exit codes: 0 done, 1 the system failed, 2 invalid input. */
@Command(name = "dmap", mixinStandardHelpOptions = true, version = "dmap 0.1.0",
        description = "Map a file's blocks into a device and move its bytes straight from the block device.",
        subcommands = {MapCommand.class, P2pCommand.class, ExplainCommand.class, WatchCommand.class, StatsCommand.class, TopologyCommand.class, TortureCommand.class, BenchCommand.class, ServeCommand.class, DemoCommand.class, CommandLine.HelpCommand.class})
public final class Dmap {
    public static final int OK = 0, FAILED = 1, INVALID_INPUT = 2;

    public static void main(String[] args) {
        System.exit(run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
    }

    /** Runs with the given streams (tests capture them); returns the exit code. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        try {
            String faults = io.directmap.fault.Faults.fromEnvironment();
            if (!faults.isEmpty()) err.println("dmap: fault points are on (DMAP_FAULTS=" + faults + "): failures are injected on purpose");
        } catch (IllegalArgumentException e) {
            err.println("dmap: " + e.getMessage());
            return INVALID_INPUT;
        }
        CommandLine cl = new CommandLine(new Dmap());
        cl.setOut(out);
        cl.setErr(err);
        // Typed options, converted once for every command: bad input is picocli's "Invalid value" (exit 2).
        cl.registerConverter(Size.class, new Size.Converter());
        cl.registerConverter(Range.class, new Range.Converter());
        cl.registerConverter(Policy.CachedPages.class, new Choice<>(Policy.CachedPages.class));
        cl.registerConverter(Common.PolicyChoice.class, new Choice<>(Common.PolicyChoice.class));
        cl.registerConverter(ScratchFilesystem.Type.class, new Choice<>(ScratchFilesystem.Type.class));
        // Bad input is one line that says what is wrong, and where to look, not a usage dump.
        cl.setParameterExceptionHandler((ex, line) -> {
            err.println("dmap: " + ex.getMessage());
            CommandLine sub = ex.getCommandLine();
            String name = sub == null || sub == cl ? "" : " " + sub.getCommandName();
            err.println("      (dmap" + name + " --help lists the options)");
            return INVALID_INPUT;
        });
        cl.setExecutionExceptionHandler((ex, line, parsed) -> {
            if (ex instanceof InvalidRequestException) {
                err.println("dmap: " + ex.getMessage());
                return INVALID_INPUT;
            }
            if (ex instanceof IOException || ex instanceof IllegalArgumentException) {
                err.println("dmap: " + ex.getMessage());
                if (System.getenv("DMAP_DEBUG") != null) ex.printStackTrace(err);
                return ex instanceof IllegalArgumentException ? INVALID_INPUT : FAILED;
            }
            err.println("dmap: internal error: " + ex);
            ex.printStackTrace(err);
            return FAILED;
        });
        return cl.execute(args);
    }
}
