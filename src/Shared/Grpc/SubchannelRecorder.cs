using Grpc.Net.Client.Balancer;

namespace Lodestar.Internal;

/// <summary>
/// Passes the channel's control helper through and remembers the subchannels the balancer creates, so that a picker
/// can tell an endpoint whose connection is still being made from one whose connection failed; shows the balancer every
/// state published to the channel, its base's included.
/// </summary>
internal sealed class SubchannelRecorder(IChannelControlHelper inner) : IChannelControlHelper
{
    private readonly Lock _gate = new();
    private readonly Dictionary<Subchannel, global::Grpc.Core.ConnectivityState> _states = [];

    public Subchannel CreateSubchannel(SubchannelOptions options)
    {
        var subchannel = inner.CreateSubchannel(options);
        lock (_gate)
        {
            _states[subchannel] = global::Grpc.Core.ConnectivityState.Idle;
        }

        // Registered before the balancer's own callback, so a picker built on a change already sees it.
        subchannel.OnStateChanged(state =>
        {
            lock (_gate)
            {
                if (state.State == global::Grpc.Core.ConnectivityState.Shutdown)
                {
                    _states.Remove(subchannel);
                }
                else
                {
                    _states[subchannel] = state.State;
                }
            }
        });
        return subchannel;
    }

    /// <summary>Gets or sets what sees each state before the channel does.</summary>
    public Action<BalancerState>? Published { get; set; }

    public void UpdateState(BalancerState state)
    {
        Published?.Invoke(state);
        inner.UpdateState(state);
    }

    public void RefreshResolver() => inner.RefreshResolver();

    /// <summary>The addresses of the subchannels that are idle or connecting now; shut-down subchannels are forgotten.</summary>
    public HashSet<(string Host, int Port)> Connecting()
    {
        var connecting = new HashSet<(string Host, int Port)>(ReadySubchannels.HostPortComparer.Instance);
        lock (_gate)
        {
            foreach (var (subchannel, state) in _states)
            {
                if (state is global::Grpc.Core.ConnectivityState.Idle or global::Grpc.Core.ConnectivityState.Connecting
                    && (subchannel.CurrentAddress ?? (subchannel.GetAddresses() is { Count: > 0 } all ? all[0] : null)) is { } address)
                {
                    connecting.Add((address.EndPoint.Host, address.EndPoint.Port));
                }
            }
        }

        return connecting;
    }
}
