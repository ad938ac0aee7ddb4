using Lodestar.Fuzz;
using SharpFuzz;

// lodestar-fuzz list                 the targets
// lodestar-fuzz <target>             under afl-fuzz: a persistent loop over stdin (one run without afl-fuzz)
// lodestar-fuzz <target> <file>...   replays files and prints every undocumented exception with its stack
if (args.Length == 0 || args[0] is "list" or "-h" or "--help")
{
    foreach (var target in FuzzTargets.All)
    {
        Console.WriteLine($"{target.Name,-20} {target.Description}");
    }

    return args.Length == 0 ? 2 : 0;
}

var selected = FuzzTargets.Find(args[0]);
if (selected is null)
{
    await Console.Error.WriteLineAsync($"error: unknown target '{args[0]}'; known: {string.Join(", ", FuzzTargets.All.Select(t => t.Name))}.");
    return 2;
}

if (args.Length == 1)
{
    Fuzzer.Run(stream =>
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        selected.Run(buffer.ToArray());
    });
    return 0;
}

var failures = 0;
foreach (var file in args.Skip(1))
{
    try
    {
        selected.Run(File.ReadAllBytes(file));
    }
    catch (Exception ex)
    {
        failures++;
        Console.WriteLine($"== {file}");
        Console.WriteLine(ex.ToString());
    }
}

return failures == 0 ? 0 : 1;
