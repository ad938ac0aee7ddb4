using System.Text;

namespace Lodestar.Testing.Consul;

/// <summary>
/// One hostile or broken answer of <see cref="FakeConsulAgent"/> to a health query, injected with
/// <see cref="FakeConsulAgent.InjectHealthFault"/>. A fault is taken by the next health query that arrives and is served
/// at once, without blocking; queries already parked keep blocking (release them with
/// <see cref="FakeConsulAgent.ReleaseParkedQueries"/>).
/// </summary>
public sealed class ConsulFault
{
    private ConsulFault(ConsulFaultKind kind, string name)
    {
        Kind = kind;
        Name = name;
    }

    /// <summary>Gets what the agent does.</summary>
    public ConsulFaultKind Kind { get; }

    /// <summary>Gets a short description, for test output.</summary>
    public string Name { get; }

    /// <summary>Gets the body sent by <see cref="ConsulFaultKind.Body"/>.</summary>
    public byte[] Payload { get; private init; } = [];

    /// <summary>Gets the status code sent.</summary>
    public int Status { get; private init; } = 200;

    /// <summary>
    /// Gets the <c>X-Consul-Index</c> sent: <see langword="null"/> for the agent's real index, <see cref="OmitIndex"/> for none.
    /// </summary>
    public string? IndexHeader { get; private init; }

    /// <summary>Gets the size of an <see cref="ConsulFaultKind.Oversized"/> answer in bytes.</summary>
    public int Size { get; private init; }

    /// <summary>Gets whether an <see cref="ConsulFaultKind.Oversized"/> answer declares its length (else it is chunked).</summary>
    public bool DeclareLength { get; private init; }

    /// <summary>Gets the pause between two bytes of a <see cref="ConsulFaultKind.Drip"/>.</summary>
    public TimeSpan Interval { get; private init; }

    /// <summary>The <see cref="IndexHeader"/> value that makes the agent send no <c>X-Consul-Index</c> at all.</summary>
    public const string OmitIndex = "\0omit";

    /// <summary>An answer with this body (UTF-8), status and index header (default: the agent's real index).</summary>
    public static ConsulFault Body(string name, string body, int status = 200, string? index = null)
        => Bytes(name, Encoding.UTF8.GetBytes(body), status, index);

    /// <summary>An answer with these bytes (for text that is not UTF-8), status and index header.</summary>
    public static ConsulFault Bytes(string name, byte[] body, int status = 200, string? index = null)
        => new(ConsulFaultKind.Body, name) { Payload = body, Status = status, IndexHeader = index };

    /// <summary>The agent's real answer with this <c>X-Consul-Index</c> (<see cref="OmitIndex"/> for none).</summary>
    public static ConsulFault Index(string value) => new(ConsulFaultKind.RealAnswer, "index " + value) { IndexHeader = value };

    /// <summary>A well-formed answer of realistic entries at least <paramref name="bytes"/> long, with or without Content-Length.</summary>
    public static ConsulFault Oversized(int bytes, bool declareLength)
        => new(ConsulFaultKind.Oversized, $"{bytes} bytes{(declareLength ? " with Content-Length" : " chunked")}") { Size = bytes, DeclareLength = declareLength };

    /// <summary>The connection is closed before any answer.</summary>
    public static ConsulFault Cut() => new(ConsulFaultKind.Cut, "connection cut");

    /// <summary>Headers and half of the real answer are sent, then the connection is closed.</summary>
    public static ConsulFault CutMidBody() => new(ConsulFaultKind.CutMidBody, "connection cut mid-body");

    /// <summary>The query is held, ignoring its wait, until the client gives up or the agent stops.</summary>
    public static ConsulFault Stall() => new(ConsulFaultKind.Stall, "stalled");

    /// <summary>Headers and <c>[</c> are sent, then one space per <paramref name="interval"/> (at most 10,000) until the client gives up.</summary>
    public static ConsulFault Drip(TimeSpan interval) => new(ConsulFaultKind.Drip, "slow drip") { Interval = interval };

    /// <summary>
    /// An error whose body echoes the request's ACL token three ways (bare, as a header line, in JSON), placed so that
    /// cutting the body to a few hundred characters would cut the bare token in half; the token also comes back in a
    /// response header.
    /// </summary>
    public static ConsulFault EchoToken(int status) => new(ConsulFaultKind.EchoToken, $"{status} echoing the token") { Status = status };

    /// <summary>The agent's real answer with the request's ACL token as its <c>X-Consul-Index</c>.</summary>
    public static ConsulFault EchoTokenInIndex() => new(ConsulFaultKind.EchoTokenInIndex, "token echoed as X-Consul-Index");

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>What a <see cref="ConsulFault"/> does.</summary>
public enum ConsulFaultKind
{
    /// <summary>Sends a scripted body.</summary>
    Body,

    /// <summary>Sends the real answer with a scripted index header.</summary>
    RealAnswer,

    /// <summary>Sends a large answer.</summary>
    Oversized,

    /// <summary>Closes the connection before answering.</summary>
    Cut,

    /// <summary>Closes the connection part-way through the body.</summary>
    CutMidBody,

    /// <summary>Never answers.</summary>
    Stall,

    /// <summary>Answers one byte at a time, slowly.</summary>
    Drip,

    /// <summary>Answers an error that echoes the token.</summary>
    EchoToken,

    /// <summary>Answers with the token as the index.</summary>
    EchoTokenInIndex,
}
