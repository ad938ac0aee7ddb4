namespace Lodestar.Fuzz;

/// <summary>
/// One parser under fuzzing: what it reads (the bytes a registry or a user's file can hold) and the exception types it
/// documents for malformed input. Any other exception is a finding.
/// </summary>
public sealed class FuzzTarget
{
    private readonly Action<byte[]> _body;
    private readonly Type[] _documented;

    /// <summary>Initializes a target.</summary>
    /// <param name="name">The name used by <c>scripts/fuzz.sh</c> and as the corpus folder name.</param>
    /// <param name="description">What the target reads, for <c>list</c>.</param>
    /// <param name="body">Feeds one input to the parser the way the source does.</param>
    /// <param name="documented">Exception types the parser may throw for malformed input (subclasses included).</param>
    public FuzzTarget(string name, string description, Action<byte[]> body, params Type[] documented)
    {
        Name = name;
        Description = description;
        _body = body;
        _documented = documented;
    }

    /// <summary>Gets the target's name.</summary>
    public string Name { get; }

    /// <summary>Gets what the target reads.</summary>
    public string Description { get; }

    /// <summary>Gets the exception types the parser documents for malformed input.</summary>
    public IReadOnlyList<Type> Documented => _documented;

    /// <summary>Runs one input; a documented exception is swallowed, anything else escapes (a crash for afl-fuzz).</summary>
    /// <param name="input">The input bytes.</param>
    public void Run(byte[] input)
    {
        try
        {
            _body(input);
        }
        catch (Exception ex) when (IsDocumented(ex))
        {
        }
    }

    /// <summary>Gets whether <paramref name="exception"/> is one the parser documents.</summary>
    /// <param name="exception">The exception.</param>
    /// <returns><see langword="true"/> for a documented type.</returns>
    public bool IsDocumented(Exception exception) => _documented.Any(t => t.IsInstanceOfType(exception));
}
