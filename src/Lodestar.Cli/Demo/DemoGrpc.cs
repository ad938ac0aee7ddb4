using System.Globalization;
using System.Text;
using Grpc.Core;
using Grpc.Net.Client.Configuration;
using Lodestar.Grpc;
using Lodestar.LoadBalancing;

namespace Lodestar.Cli.Demo;

/// <summary>The demo's gRPC method (<c>demo.Demo/Work</c>, UTF-8 text messages), its retry policy and the balancer for each policy.</summary>
internal static class DemoGrpc
{
    public const string Path = "/demo.Demo/Work";

    /// <summary>The header grpc-dotnet sends on a retried attempt with the number of attempts before it.</summary>
    public const string PreviousAttemptsHeader = "grpc-previous-rpc-attempts";

    private static readonly Marshaller<string> s_text = Marshallers.Create(static s => Encoding.UTF8.GetBytes(s), static b => Encoding.UTF8.GetString(b));

    public static Method<string, string> Work { get; } = new(MethodType.Unary, "demo.Demo", "Work", s_text, s_text);

    /// <summary>The policies the gRPC demo can use: the ones with a Lodestar gRPC balancer.</summary>
    public static IReadOnlyList<string> Policies { get; } =
        [LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.LeastRequest, LoadBalancingPolicies.PeakEwma, LoadBalancingPolicies.RingHash];

    /// <summary>The Lodestar gRPC balancer of a policy, or <see langword="null"/> when it has none.</summary>
    public static string? BalancerFor(string policy) => policy switch
    {
        LoadBalancingPolicies.RoundRobin => LodestarGrpcPolicies.RoundRobin,
        LoadBalancingPolicies.LeastRequest => LodestarGrpcPolicies.LeastRequest,
        LoadBalancingPolicies.PeakEwma => LodestarGrpcPolicies.PeakEwma,
        LoadBalancingPolicies.RingHash => LodestarGrpcPolicies.RingHash,
        _ => null,
    };

    /// <summary>
    /// gRPC's own retry policy for the demo's method, which is safe to repeat: a call that fails with
    /// <c>UNAVAILABLE</c> (an instance killed under it, a connection refused) is sent again, and the balancer picks again.
    /// The balancer integration leaves retries to gRPC (docs/grpc.md).
    /// </summary>
    public static MethodConfig RetryConfig() => new()
    {
        Names = { MethodName.Default },
        RetryPolicy = new RetryPolicy
        {
            MaxAttempts = 3,
            InitialBackoff = TimeSpan.FromMilliseconds(20),
            MaxBackoff = TimeSpan.FromMilliseconds(200),
            BackoffMultiplier = 2,
            RetryableStatusCodes = { StatusCode.Unavailable },
        },
    };

    public static string FormatReply(string address, int previousAttempts) => string.Create(CultureInfo.InvariantCulture, $"{address}|{previousAttempts}");

    /// <summary>Splits a reply into the address that served the call and the attempts before it.</summary>
    public static (string Address, int PreviousAttempts) ParseReply(string reply)
    {
        var bar = reply.LastIndexOf('|');
        return bar < 0 ? (reply, 0) : (reply[..bar], int.TryParse(reply.AsSpan(bar + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0);
    }
}
