using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Microsoft.Extensions.Logging;

namespace Lodestar.Internal;

/// <summary>
/// A subchannel per address (grpc-dotnet's <see cref="SubchannelsLoadBalancer"/>) whose pickers read state that changes
/// outside the channel too (a Lodestar balancer applying an endpoint set), so a new picker is sometimes published from
/// outside the channel's lock: <see cref="Publish"/> never leaves a picker built from older state than the channel's
/// own last one in force.
/// </summary>
/// <remarks>
/// A generation counts the changes to what a picker is built from: the ready subchannels (set here when the channel asks
/// for a picker, emptied when the base publishes a state other than ready without asking), and whatever the derived
/// balancer reports with <see cref="Changed_NeedsLock"/>. A picker published from outside the channel's lock is
/// published again, from the newer state, when the generation moved while it was being published.
/// </remarks>
internal abstract class RepublishingLoadBalancer : SubchannelsLoadBalancer
{
    private long _generation;

    protected RepublishingLoadBalancer(SubchannelRecorder controller, ILoggerFactory loggerFactory)
        : base(controller, loggerFactory)
    {
        Subchannels = controller;
        controller.Published = OnPublished;
    }

    /// <summary>Gets the lock over the balancer's state, <see cref="Ready"/> included.</summary>
    protected Lock Gate { get; } = new();

    /// <summary>Gets the channel's control helper as the recorder of the subchannels' states.</summary>
    protected SubchannelRecorder Subchannels { get; }

    /// <summary>Gets the subchannels ready when the channel last asked for a picker; empty once no subchannel is. Under <see cref="Gate"/>.</summary>
    protected IReadOnlyList<Subchannel> Ready { get; private set; } = [];

    protected sealed override SubchannelPicker CreatePicker(IReadOnlyList<Subchannel> readySubchannels)
    {
        lock (Gate)
        {
            Ready = readySubchannels;
            _generation++;
        }

        return BuildPicker(readySubchannels);
    }

    /// <summary>Builds the picker the channel asked for over <paramref name="ready"/>, from the derived balancer's state.</summary>
    protected abstract SubchannelPicker BuildPicker(IReadOnlyList<Subchannel> ready);

    /// <summary>
    /// Builds the picker <see cref="Publish"/> publishes from outside the channel's lock, over <see cref="Ready"/> (not
    /// empty); <see langword="null"/> when there is nothing to pick with yet (the base's picker, which queues or fails,
    /// stays). Under <see cref="Gate"/>.
    /// </summary>
    protected abstract SubchannelPicker? BuildToPublish_NeedsLock();

    /// <summary>Records a change to what pickers are built from. Under <see cref="Gate"/>.</summary>
    protected void Changed_NeedsLock() => _generation++;

    /// <summary>Gets the current generation. Under <see cref="Gate"/>.</summary>
    protected long Generation_NeedsLock() => _generation;

    /// <summary>
    /// Publishes, as ready, the picker <see cref="BuildToPublish_NeedsLock"/> makes; nothing when no subchannel is ready
    /// or it makes none. If the
    /// channel built a picker meanwhile, which it may have published before this one, publishes again from the newer
    /// state. Bounded: each round needs the channel to have changed its state in between.
    /// </summary>
    protected void Publish()
    {
        for (var round = 0; round < 8; round++)
        {
            SubchannelPicker? picker;
            long generation;
            lock (Gate)
            {
                picker = Ready.Count == 0 ? null : BuildToPublish_NeedsLock();
                generation = _generation;
            }

            if (picker is null)
            {
                return;
            }

            Controller.UpdateState(new BalancerState(ConnectivityState.Ready, picker));
            lock (Gate)
            {
                if (_generation == generation)
                {
                    return;
                }
            }
        }
    }

    /// <summary>
    /// Sees every state published to the channel. The base publishes a state other than ready (connecting, failure)
    /// without asking for a picker: no subchannel is ready then, and a picker published later must not bring back the
    /// subchannels of the last ready list.
    /// </summary>
    private void OnPublished(BalancerState state)
    {
        if (state.ConnectivityState == ConnectivityState.Ready)
        {
            return;
        }

        lock (Gate)
        {
            Ready = [];
            _generation++;
        }
    }
}
