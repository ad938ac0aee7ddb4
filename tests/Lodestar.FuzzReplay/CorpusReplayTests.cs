using Lodestar.Fuzz;

namespace Lodestar.FuzzReplay;

/// <summary>
/// Replays every input the fuzzers kept (tests/Lodestar.Fuzz/Corpus/&lt;target&gt;/) through its target: a parser may
/// throw the exceptions it documents for malformed input, nothing else. Inputs listed in <c>known-crashes.txt</c> are
/// open findings; they are checked to still crash, so that fixing one makes this suite say to move it into the corpus.
/// </summary>
public sealed class CorpusReplayTests
{
    private static readonly string s_corpus = Path.Combine(RepositoryRoot(), "tests", "Lodestar.Fuzz", "Corpus");

    public static TheoryData<string> Targets() => [.. FuzzTargets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Replay_EveryCorpusFile_ThrowsOnlyDocumentedExceptions(string name)
    {
        var target = FuzzTargets.Find(name)!;
        var known = KnownCrashes();
        var files = Directory.GetFiles(Path.Combine(s_corpus, name)).Where(f => !known.Contains(name + "/" + Path.GetFileName(f))).Order(StringComparer.Ordinal).ToList();

        var failures = new List<string>();
        foreach (var file in files)
        {
            try
            {
                target.Run(File.ReadAllBytes(file));
            }
            catch (Exception ex)
            {
                failures.Add($"{name}/{Path.GetFileName(file)}: {ex}");
            }
        }

        Assert.True(files.Count > 0, $"the corpus of {name} is empty");
        Assert.True(failures.Count == 0, $"{failures.Count} of {files.Count} inputs threw an undocumented exception:\n" + string.Join("\n\n", failures));
    }

    [Fact]
    public void KnownCrashes_EachStillThrowsAnUndocumentedException()
    {
        foreach (var entry in KnownCrashes())
        {
            var name = entry[..entry.IndexOf('/', StringComparison.Ordinal)];
            var target = FuzzTargets.Find(name);
            Assert.True(target is not null, $"known-crashes.txt names unknown target '{name}'");
            var path = Path.Combine(s_corpus, entry);
            Assert.True(File.Exists(path), $"known-crashes.txt names {entry}, which is not in the corpus");
            var error = Record.Exception(() => target!.Run(File.ReadAllBytes(path)));
            Assert.True(error is not null, $"{entry} no longer crashes its parser: remove it from known-crashes.txt so the corpus replay covers it");
        }
    }

    [Fact]
    public void Corpus_EveryTargetHasSeedsAndEveryFolderATarget()
    {
        var folders = Directory.GetDirectories(s_corpus).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();

        Assert.Equal(FuzzTargets.All.Select(t => t.Name).Order(StringComparer.Ordinal), folders);
        Assert.All(FuzzTargets.All, t => Assert.NotEmpty(Directory.GetFiles(Path.Combine(s_corpus, t.Name), "seed-*")));
    }

    [Fact]
    public void Run_UndocumentedException_Escapes()
    {
        // The harness itself: a documented exception is swallowed, any other escapes to afl-fuzz as a crash.
        var target = new FuzzTarget("probe", "throws what the input names", static input =>
        {
            if (input[0] == 1)
            {
                throw new FormatException("documented");
            }

            throw new InvalidOperationException("not documented");
        }, typeof(FormatException));

        target.Run([1]);
        Assert.Throws<InvalidOperationException>(() => target.Run([2]));
    }

    private static HashSet<string> KnownCrashes()
    {
        var path = Path.Combine(s_corpus, "known-crashes.txt");
        return File.Exists(path)
            ? [.. File.ReadAllLines(path).Select(l => l.Split('#', 2)[0].Trim()).Where(l => l.Length > 0)]
            : [];
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Lodestar.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("Lodestar.slnx not found above " + AppContext.BaseDirectory);
    }
}
