// A plain express service: kar forwards requests for service "greeter" here.
const express = require('express')

const app = express()
app.use(express.text({ type: '*/*' }))

app.post('/helloText', (req, res) => res.type('text/plain').send(`Hello ${req.body}`))
app.post('/helloJson', (req, res) => {
  const { name } = JSON.parse(req.body)
  res.json({ greetings: `Hello ${name}` })
})

const port = process.env.KAR_APP_PORT || 8080
app.listen(port, '127.0.0.1', () => console.log(`greeter listening on ${port}`))
