package io.directmap.fs;

import io.directmap.fs.ChangeWatch.Change;
import io.directmap.fs.ChangeWatch.Task;
import io.directmap.fs.ChangeWatch.Verdict;
import io.directmap.sys.TaskSyscall.Access;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

/**
 * A JVM of its own that watches one file and never answers an open for writing or a change
 * (its listener waits forever), for {@link ChangeWatchFailureTest}'s kill -9. Prints "watching"
 * once the mark is in place, then waits to be killed. With {@code --available} it only prints
 * whether changes can be watched and why not ({@link ChangeWatchNonRootTest}).
 */
public final class ChangeWatchChild {
    private ChangeWatchChild() {}

    public static void main(String[] args) throws Exception {
        CountDownLatch never = new CountDownLatch(1);
        ChangeWatch watch = ChangeWatch.open();
        if (args[0].equals("--available")) {       // only say whether changes can be watched, and why not
            System.out.println(watch.available() + ": " + watch.why());
            watch.close();
            return;
        }
        if (!watch.available()) {
            System.out.println("unavailable: " + watch.why());
            System.exit(3);
        }
        ChangeWatch.Watched w = watch.watch(OpenFile.open(Path.of(args[0])), new ChangeWatch.Listener() {
            @Override public Verdict opening(Task t, Access.Open a) {
                System.out.println("holding an open by " + t);
                System.out.flush();
                return hold(never);
            }

            @Override public Verdict changing(Task t, Change c) { return hold(never); }

            @Override public void writerClosed(Task t) { }
        });
        if (w instanceof ChangeWatch.Refused r) {
            System.out.println("refused: " + r);
            System.exit(4);
        }
        System.out.println("watching");
        System.out.flush();
        never.await();
    }

    private static Verdict hold(CountDownLatch never) {
        try {
            never.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return new Verdict.Deny(26, "held");
    }
}
