using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Lodestar.Http;
using Lodestar.Internal;
using Lodestar.LoadBalancing;

namespace Lodestar.Grpc.Internal;

/// <summary>
/// Picks with Lodestar's balancer of the service and returns the picked endpoint's ready subchannel, with a call
/// tracker that starts the attempt when the call is sent and reports its outcome when it ends.
/// </summary>
/// <remarks>
/// Built whenever the set of ready subchannels changes; health changes need no rebuild because every pick reads the
/// Lodestar balancer's current picker. The pick itself takes no lock; it allocates grpc-dotnet's
/// <see cref="PickResult"/>; the tracker, which carries the call's own state, comes from a pool.
/// </remarks>
internal sealed class LodestarPicker : SubchannelPicker
{
    private readonly BalancedService _service;
    private readonly ReadySubchannels _ready;
    private readonly GrpcStatusOptions _grpc;
    private readonly string? _hashHeader;
    private readonly HashSet<(string Host, int Port)>? _connecting;
    private readonly long _setVersion;

    public LodestarPicker(BalancedService service, IReadOnlyList<Subchannel> ready, GrpcStatusOptions grpc, string? hashHeader,
        HashSet<(string Host, int Port)>? connecting = null, long setVersion = 0)
    {
        _service = service;
        _setVersion = setVersion;
        _connecting = connecting is { Count: > 0 } ? connecting : null;
        _grpc = grpc;
        _hashHeader = hashHeader;
        _ready = new ReadySubchannels(ready);
    }

    /// <summary>Gets the number of ready subchannels the picker maps endpoints to.</summary>
    public int ReadyCount => _ready.Count;

    public override PickResult Pick(global::Grpc.Net.Client.Balancer.PickContext context)
    {
        var request = context.Request;

        // The balancer's set as the pick begins: should it apply a newer one while this pick runs, a pick that failed on
        // the older set still waits for the next picker instead of failing.
        var balancerSet = _service.SetVersion;
        var pick = new Lodestar.LoadBalancing.PickContext(request);
        if (_hashHeader is not null)
        {
            pick = pick with { RequestHash = HashHeader(request, _hashHeader) };
        }

        if (!_service.TryPick(pick, out var attempt))
        {
            return IsSetChanging(balancerSet) ? PickResult.ForQueue() : NoEndpoint();
        }

        if (TryGetSubchannel(attempt, out var subchannel))
        {
            return PickResult.ForSubchannel(subchannel, CallTracker.Rent(attempt, _grpc, request, this, pick));
        }

        // The endpoint has no ready connection yet (or the channel's addresses lag the balancer's set): try the others.
        attempt.Cancel();
        var tried = new List<EndpointState>(4) { attempt.Endpoint! };
        if (TryPickAnother(pick, tried, out attempt, out subchannel))
        {
            return PickResult.ForSubchannel(subchannel, CallTracker.Rent(attempt, _grpc, request, this, pick));
        }

        // Every endpoint the layers allow lacks a ready connection. While one of them is still connecting, the call
        // waits for the next picker (published when a connection becomes ready or fails), as a gRPC balancer queues
        // picks while its preferred subchannels connect. It waits too while Lodestar's balancer and the channel's
        // addresses come from different endpoint sets (one has heard of a change the other has not yet applied): the
        // next picker comes when the lagging one applies it. Otherwise it fails now.
        return IsConnecting(tried) || IsSetChanging(balancerSet) ? PickResult.ForQueue() : NoEndpoint();
    }

    /// <summary>
    /// Whether the channel's addresses and Lodestar's balancer came from different versions of the endpoint set while
    /// the pick ran: at its start (<paramref name="balancerSet"/>) or now.
    /// </summary>
    private bool IsSetChanging(long balancerSet) => _setVersion != 0 && (balancerSet != _setVersion || _service.SetVersion != _setVersion);

    private bool IsConnecting(List<EndpointState> tried)
    {
        if (_connecting is null)
        {
            return false;
        }

        foreach (var state in tried)
        {
            if (_connecting.Contains((state.Endpoint.Host, state.Endpoint.Port)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Picks an endpoint other than those in <paramref name="tried"/> that has a ready subchannel; every endpoint picked
    /// without one is added to <paramref name="tried"/>. Bounded by the number of endpoints.
    /// </summary>
    internal bool TryPickAnother(in Lodestar.LoadBalancing.PickContext pick, List<EndpointState> tried, out EndpointAttempt attempt, out Subchannel subchannel)
        => _ready.TryPickAnother(_service, pick, tried, out attempt, out subchannel);

    /// <summary>Hashes a header's value (FNV-1a, 64 bits, then a finalizer) without allocating; no header gives <see langword="null"/> (a random pick).</summary>
    internal static ulong? HashHeader(HttpRequestMessage? request, string header)
    {
        if (request is null || !request.Headers.NonValidated.TryGetValues(header, out var values))
        {
            return null;
        }

        var hash = 14695981039346656037UL;
        foreach (var value in values)
        {
            foreach (var c in value)
            {
                hash = (hash ^ c) * 1099511628211UL;
            }

            // Multiple values are separated as they would be joined.
            hash = (hash ^ ',') * 1099511628211UL;
        }

        // FNV-1a leaves keys that differ in their last characters close together in the high bits, where a ring
        // looks; MurmurHash3's 64-bit finalizer spreads every input bit over the whole value.
        hash ^= hash >> 33;
        hash *= 0xff51afd7ed558ccdUL;
        hash ^= hash >> 33;
        hash *= 0xc4ceb9fe1a85ec53UL;
        hash ^= hash >> 33;
        return hash;
    }

    private bool TryGetSubchannel(in EndpointAttempt attempt, out Subchannel subchannel) => _ready.TryGet(attempt.Endpoint!, out subchannel);

    private PickResult NoEndpoint() => PickResult.ForFailure(new Status(StatusCode.Unavailable,
        $"Service '{_service.ServiceName}' has no endpoint to take the call: {_service.Routable.Count} routable, {_ready.Count} with a ready connection."));
}
