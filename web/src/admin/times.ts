/** Between an instant and the value of an `<input type="datetime-local">` (local time, seconds). */
export const toLocalInput = (millis: number): string => {
  const date = new Date(millis)
  const two = (n: number) => String(n).padStart(2, "0")
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}` +
    `T${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`
  )
}

/** The ISO instant of a datetime-local value, or undefined when it is not a date. */
export const fromLocalInput = (value: string): string | undefined => {
  const millis = new Date(value).getTime()
  return Number.isNaN(millis) ? undefined : new Date(millis).toISOString()
}
