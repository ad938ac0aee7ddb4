using Google.Protobuf.WellKnownTypes;

namespace Lodestar.Xds.Resources;

/// <summary>
/// One kind of xDS resource: its type URL, how state-of-the-world responses treat it, and how a received
/// <see cref="Any"/> becomes a validated model.
/// </summary>
internal abstract class XdsResourceType
{
    /// <summary>Gets the type URL requested and expected in responses.</summary>
    public abstract string TypeUrl { get; }

    /// <summary>
    /// Gets whether a state-of-the-world response carries every subscribed resource of the type, so that a resource
    /// missing from it has been removed (LDS and CDS); for RDS and EDS a response may carry only some of them.
    /// </summary>
    public abstract bool AllResourcesRequiredInSotW { get; }

    /// <summary>Decodes and validates one resource.</summary>
    /// <param name="resource">The resource as received.</param>
    /// <returns>The name (when it could be read) and either the model or what is wrong with it.</returns>
    public abstract XdsDecodeResult Decode(Any resource);
}

/// <summary>The outcome of decoding one resource.</summary>
/// <param name="Name">The resource name, or <see langword="null"/> when not even the name could be read.</param>
/// <param name="Resource">The validated model, or <see langword="null"/> when invalid.</param>
/// <param name="Error">What is wrong, naming the resource and the field, or <see langword="null"/> when valid.</param>
internal readonly record struct XdsDecodeResult(string? Name, object? Resource, string? Error)
{
    public static XdsDecodeResult Valid(string name, object resource) => new(name, resource, null);

    public static XdsDecodeResult Invalid(string? name, string error) => new(name, null, error);
}
